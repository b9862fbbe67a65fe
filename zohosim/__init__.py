"""A Zoho Books v3 / Inventory v1 organisation on 127.0.0.1, for tests, benchmarks and `make run`.

A real HTTP server (stdlib, in a daemon thread, no Django) that serves the accounts token endpoint
and the REST API at one base URL, so ZOHO_API_BASE = ZOHO_ACCOUNTS_BASE = sim.url:

    with ZohoSimulator(per_minute_limit=100) as sim:
        sim.seed("invoices", 1200)
        sim.fail_next(500, count=3)
        ...

Data lives in memory and is shaped like the recorded samples in zohosim/samples/. Time is the
simulator's own clock (real time plus what `advance()` added), in the organisation's zone, and
drives token expiry, the per-minute and daily windows and every `last_modified_time` it writes.
Everything random comes from `random.Random(seed)`, so a seed gives the same organisation.

Faithful to Zoho where TDS Core depends on it (docs/ZOHO_SETUP.md): each module's path, keys and id
field, and what its list does with modified times (modules.MODULES: the `last_modified_time`
filter, inclusive to the second, and a modified-time sort honoured, ignored or refused); envelopes
and `page_context`; list rows are
summaries; `code` 1002 for a missing record, 44/45/1070 for the limits with `x-rate-limit-*`
headers, 401 code 14 for a dead token and 57 for a missing scope; the token endpoint answers
failures with HTTP 200 and `{"error": …}`, and exchanges self-client grant codes (`grant_code()`);
bulk item details (`/inventory/v1/itemdetails`). `edit_after_page()` edits a record between two
list pages, as a user does while a pull walks. Assumed where no sample settles it: a missing or
wrong `organization_id` is 400 code 6041.

It imports nothing from TDS Core: its facts about Zoho are its own, so tests can hold TDS Core's
against them.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from . import webhooks
from .clock import Clock
from .fabricate import LOCATIONS, UNTIMED, Fabricator, location, organization, template
from .kinds import KINDS, Kind
from .limits import Fault, Faults, Limits
from .modules import Sort
from .oauth import FULL_SCOPE, Tokens
from .server import Server
from .store import Store, clone, detail, stored_form

__all__ = ["Request", "ZohoSimulator"]

REQUESTS_KEPT = 200_000


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]
    at: datetime


class ZohoSimulator:
    def __init__(
        self,
        client_id: str = "sim-client",
        client_secret: str = "sim-secret",
        refresh_token: str = "sim-refresh",
        organization_id: str = "60012345",
        token_ttl_seconds: int = 3600,
        per_minute_limit: int | None = None,
        daily_limit: int | None = None,
        concurrency_limit: int | None = None,
        webhook_target: str | None = None,
        webhook_token: str | None = None,
        *,
        webhook_secret: str | None = None,
        zoho_webhook_secret: str | None = None,
        standard_webhook_secret: str | None = None,
        token_mint_limit: int | None = None,
        time_zone: str = "America/New_York",
        seed: int = 0,
        port: int = 0,
        sort: dict[str, Sort] | None = None,
    ) -> None:
        """Outbound webhooks authenticate with every scheme given: `webhook_token` as X-TDS-Token,
        `webhook_secret` as X-TDS-Signature (HMAC of the body), `zoho_webhook_secret` as
        X-Zoho-Webhook-Signature, `standard_webhook_secret` (whsec_…) as Standard Webhooks headers.
        `token_mint_limit=10` enforces Zoho's 10 access tokens per 10 minutes per refresh token.
        `sort` answers a modified-time sort per slug otherwise than modules.MODULES says."""
        self.organization_id = organization_id
        self.daily_limit = daily_limit
        self.webhook_target = webhook_target
        self.webhook_auth = webhooks.WebhookAuth(
            webhook_token, webhook_secret, zoho_webhook_secret, standard_webhook_secret
        )
        self.port = port
        self.rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self.clock = Clock(ZoneInfo(time_zone))
        self._store = Store()
        for slug, behaviour in (sort or {}).items():
            self._store.modified_sort[KINDS[slug].module.path] = Sort(behaviour)
        self._edits: list[tuple[str, int, str, str, dict[str, Any]]] = []
        self._edits_lock = threading.Lock()
        self._tokens = Tokens(
            self.clock,
            random.Random(seed + 1),
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            ttl_seconds=token_ttl_seconds,
            mint_limit=token_mint_limit,
        )
        self._limits = Limits(self.clock, per_minute=per_minute_limit, daily=daily_limit, concurrency=concurrency_limit)
        self._faults = Faults()
        # Bounded: `make run` keeps a simulator up for days; tests look at far fewer calls than this.
        self._requests: deque[Request] = deque(maxlen=REQUESTS_KEPT)
        self._requests_lock = threading.Lock()
        self._next_id = 4_815_000_000_000_000_000 + self.rng.randrange(10**9) * 10**6
        self._serials: dict[str, int] = {}
        self.locations = [
            {"location_id": self._new_id(), "location_name": name, "is_primary": primary} for name, primary in LOCATIONS
        ]
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._webhook_client: httpx.Client | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ZohoSimulator:
        self._stopping.clear()
        self._server = Server(self, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="zoho-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes slow answers
        if self._webhook_client is not None:
            self._webhook_client.close()
            self._webhook_client = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ZohoSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- clock ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- data -----------------------------------------------------------------------------------
    def seed(self, slug: str, count: int, **overrides: Any) -> list[dict[str, Any]]:
        """Add `count` realistic objects (overrides set fields on each; datetimes become Zoho times),
        returned as their detail endpoint answers them.

        Their created and last_modified times lie in the 90 days that end an hour before now."""
        path = KINDS[slug].module.path
        pools: dict[str, list[dict[str, Any]]] = {}

        def pick(ref: str) -> dict[str, Any] | None:
            if ref not in pools:
                pools[ref] = self._objects(KINDS[ref])
            return self.rng.choice(pools[ref]) if pools[ref] else None

        now = self.now()
        made = []
        with self._rng_lock:
            fabricator = Fabricator(self.rng, self._new_id, pick, self.clock.format, self.locations)
            for _ in range(count):
                obj = fabricator.make(slug, self._serial(slug), now)
                obj.update(self._zoho_values(overrides))
                self._store.put(path, obj, owned=True)
                made.append(detail(path, obj))
        return made

    def add(self, slug: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as given, filling its id, contact_type and times when it lacks them."""
        kind = KINDS[slug]
        module = kind.module
        obj = stored_form(module.path, self._zoho_values(obj))
        if not obj.get(module.id_field):
            with self._rng_lock:
                obj[module.id_field] = self._new_id()
        if kind.contact_type:
            obj.setdefault("contact_type", kind.contact_type.value)
        if slug not in UNTIMED:
            stamp = self.clock.format()
            obj.setdefault("created_time", stamp)
            obj.setdefault("last_modified_time", stamp)
        self._store.put(module.path, obj, owned=True)
        return detail(module.path, obj)

    def update(self, slug: str, zoho_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of a stored object; its last_modified_time moves to now unless given."""
        kind = KINDS[slug]
        path = kind.module.path
        obj = self._store.raw(path, zoho_id)
        if obj is None or not kind.holds(obj):
            raise KeyError(f"{slug} {zoho_id} does not exist")
        if slug not in UNTIMED:
            obj["last_modified_time"] = self.clock.format()
        obj.update(self._zoho_values(fields))
        self._store.put(path, obj, owned=True)
        return detail(path, obj)

    def delete(self, slug: str, zoho_id: str) -> None:
        if self.get(slug, zoho_id) is None or not self._store.remove(KINDS[slug].module.path, zoho_id):
            raise KeyError(f"{slug} {zoho_id} does not exist")

    def get(self, slug: str, zoho_id: str) -> dict[str, Any] | None:
        """The object as its detail endpoint answers it, or None."""
        kind = KINDS[slug]
        obj = self._store.raw(kind.module.path, str(zoho_id))
        return detail(kind.module.path, obj) if obj is not None and kind.holds(obj) else None

    def all(self, slug: str) -> list[dict[str, Any]]:
        kind = KINDS[slug]
        return [detail(kind.module.path, obj) for obj in self._objects(kind)]

    def adjust_stock(self, item_id: str, location_id: str, quantity: float, *, reason: str = "Stocktake") -> dict:
        """Record an inventory adjustment and move the item's stock at that location, as Zoho does."""
        item = self._store.raw("items", item_id)
        if item is None:
            raise KeyError(f"products {item_id} does not exist")
        for place in item.get("locations", []):
            if place["location_id"] == location_id:
                on_hand = place["location_stock_on_hand"] or 0
                for field in ("location_stock_on_hand", "location_available_stock", "location_actual_available_stock"):
                    place[field] = on_hand + quantity
        tracked = [loc["location_stock_on_hand"] for loc in item["locations"] if loc["location_stock_on_hand"] != ""]
        # A stock movement is not an edit of the item: Zoho leaves its last_modified_time alone, so
        # only the list row's stock_on_hand total (or a detail) shows it.
        self.update(
            "products",
            item_id,
            locations=item["locations"],
            stock_on_hand=sum(tracked),
            available_stock=sum(tracked),
            last_modified_time=item.get("last_modified_time", ""),
        )
        name = next(loc["location_name"] for loc in self.locations if loc["location_id"] == location_id)
        line = {**template("stock")["line_items"][0], "serial_numbers": [], "batches": [], "storages": []}
        line.update(item_id=item_id, name=item["name"], quantity_adjusted=quantity, item_total=0)
        line.update(location_id=location_id, location_name=name)
        with self._rng_lock:
            line["line_item_id"] = self._new_id()
        adjustment = {**template("stock"), "line_items": [line], "location_id": location_id, "location_name": name}
        adjustment.update(reason=reason, date=self.now().date().isoformat(), custom_fields=[], total=0)
        adjustment.pop("inventory_adjustment_id")
        return self.add("stock", adjustment)

    def organizations(self) -> dict[str, Any]:
        """The answer of GET /organizations: the one organisation this simulator is."""
        org = organization()
        org.update(organization_id=self.organization_id, time_zone=str(self.clock.zone.key))
        return {"code": 0, "message": "success", "organizations": [org]}

    def location_list(self) -> dict[str, Any]:
        """The answer of GET /inventory/v1/locations: the locations items keep stock in."""
        rows = [location(loc["location_id"], loc["location_name"], loc["is_primary"]) for loc in self.locations]
        return {"code": 0, "message": "success", "locations": rows}

    def list_order(self, slug: str, column: str, order: str) -> None:
        """List the slug's module in this order when no sort is asked for (Zoho's order is its own)."""
        self._store.default_order[KINDS[slug].module.path] = (column, order)

    def edit_after_page(self, slug: str, page: int, zoho_id: str, **fields: Any) -> None:
        """Once list page `page` of the slug's module has next been answered, update the record,
        as a user editing it while a pull walks the list does (its last_modified_time moves to now)."""
        with self._edits_lock:
            self._edits.append((KINDS[slug].module.path, page, slug, zoho_id, fields))

    def _after_list(self, collection: str, page: int) -> None:
        # One edit per answered page: several for one page apply at its successive requests.
        with self._edits_lock:
            due = next((e for e in self._edits if e[:2] == (collection, page)), None)
            if due is not None:
                self._edits.remove(due)
        if due is not None:
            _, _, slug, zoho_id, fields = due
            self.update(slug, zoho_id, **fields)

    def grant_code(self, scope: str = FULL_SCOPE, ttl_seconds: int = 180) -> str:
        """A self-client grant code, as Zoho's API console generates it (3 minutes by default)."""
        return self._tokens.grant_code(scope, ttl_seconds)

    # -- faults ---------------------------------------------------------------------------------
    def fail_next(self, status: int, count: int = 1, code: int | None = None, path_contains: str | None = None):
        """The next `count` matching requests answer `status` with Zoho's body for `code` (default by status).

        Faults match API calls, or with `path_contains` any request whose path and query contain it."""
        self._faults.add(Fault("fail", count, path_contains, status=status, code=code))

    def slow_next(self, seconds: float, count: int = 1, path_contains: str | None = None) -> None:
        self._faults.add(Fault("slow", count, path_contains, seconds=seconds))

    def drop_next(self, count: int = 1, path_contains: str | None = None) -> None:
        self._faults.add(Fault("drop", count, path_contains))

    def clear_faults(self) -> None:
        self._faults.clear()

    def revoke_tokens(self) -> None:
        self._tokens.revoke()

    def restore_tokens(self) -> None:
        """Undo revoke_tokens(): the refresh token works again (a re-authorised grant)."""
        self._tokens.restore()

    def expire_tokens(self) -> None:
        self._tokens.expire()

    @property
    def tokens_minted(self) -> int:
        return self._tokens.minted

    # -- observation ----------------------------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    @property
    def in_flight(self) -> int:
        """API calls being answered right now (what the concurrency limit counts)."""
        return self._limits.in_flight

    def api_calls(self) -> list[Request]:
        """Requests to the REST API (not the token endpoint): what Zoho counts against the limits."""
        return [r for r in self.requests if r.path.startswith(("/books/", "/inventory/"))]

    def _record(self, method: str, path: str, params: dict[str, str]) -> None:
        with self._requests_lock:
            self._requests.append(Request(method, path, params, self.now()))

    # -- webhooks -------------------------------------------------------------------------------
    def push_webhook(
        self,
        slug: str,
        obj: dict[str, Any],
        method: str = "POST",
        *,
        body_format: str | None = None,
        delete_via: str | None = None,
        **options: Any,
    ) -> httpx.Response:
        """Deliver `obj` to webhook_target/webhooks/<slug> as a Zoho workflow webhook.

        Like Zoho's: no query parameters but those a rule sets (Zoho sends no `org` or `event`);
        the body as JSON under the record's single key, or (`body_format` unset: one delivery in
        four) Zoho's default form payload, `JSONString=<that JSON>`. A delete (method DELETE)
        goes as DELETE or, as a "Deleted" rule left on POST does, as POST with `operation=delete`
        (`delete_via`: "DELETE" or "POST"; unset, either, half the time). Options: timeout."""
        if not self.webhook_target:
            raise RuntimeError("no webhook_target configured")
        kind = KINDS[slug]
        key = kind.module.single_key
        if kind.snapshot_of and not obj.get(kind.module.id_field):
            key = kind.snapshot_of.single_key  # an item's stock snapshot
        query = None
        with self._rng_lock:
            if body_format is None:
                body_format = "form-json" if self.rng.random() < 0.25 else "json"
            if method == "DELETE" and (delete_via or self.rng.choice(("DELETE", "POST"))) == "POST":
                method, query = "POST", {"operation": "delete"}
            delivery_id = f"msg_{self.rng.getrandbits(96):024x}"
            if self._webhook_client is None:
                # One client for every delivery: a fresh one per call costs a TLS context each time.
                self._webhook_client = httpx.Client()
        return webhooks.deliver(
            self._webhook_client,
            self.webhook_target,
            slug,
            {key: obj},
            auth=self.webhook_auth,
            now=self.now(),
            delivery_id=delivery_id,
            method=method,
            query=query,
            body_format=body_format,
            **options,
        )

    # -- internals ------------------------------------------------------------------------------
    def _objects(self, kind: Kind) -> list[dict[str, Any]]:
        return [obj for obj in self._store.objects(kind.module.path) if kind.holds(obj)]

    def _new_id(self) -> str:
        self._next_id += self.rng.randint(1, 97)
        return str(self._next_id)

    def _serial(self, slug: str) -> int:
        self._serials[slug] = self._serials.get(slug, 0) + 1
        return self._serials[slug]

    def _zoho_values(self, fields: dict[str, Any]) -> dict[str, Any]:
        return clone({k: self.clock.format(v) if isinstance(v, datetime) else v for k, v in fields.items()})
