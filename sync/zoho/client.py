"""The Zoho Books / Inventory API client.

Every call: breaker (may we call at all?) → shared OAuth token → rate limiter slot → one HTTP
request through `_request()` → `raise_for_response()` → the outcome told to the limiter and the
breaker. A 401 (code 14, or 57 for a token Zoho invalidated early) refreshes the token once and
retries once; only a refused fresh token puts the breaker in its auth state. Throttles and
outages are not retried here: the caller's one retry layer (sync.pull.Calls, the queue's
backoff) waits as Zoho asks, each attempt a call with its own limiter slot.

The refresh token is ZOHO_REFRESH_TOKEN when set, else the one `zoho_connect` stored (encrypted).

Call it outside a database transaction (see sync.zoho.limiter).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from sync.entities import Entity, ZohoApi
from sync.entities import get as get_entity
from sync.zoho import breaker, limiter
from sync.zoho.errors import ErrorKind, ZohoError, raise_for_response
from sync.zoho.models import CallOutcome, ZohoToken

__all__ = ["DATA_CENTRES", "ITEM_DETAILS_MAX", "Page", "ZohoClient", "ZohoError", "hosts"]

# (API host, accounts host) per data centre, from Zoho's multi-DC page
# (https://www.zoho.com/accounts/protocol/oauth/multi-dc.html; the API hosts as Zoho's product
# docs list them, e.g. https://www.zoho.com/workdrive/developer/docs/api/v1/getting-started-multi-dc-support.html).
# Canada's accounts live on zohocloud.ca, its API on zohoapis.ca.
DATA_CENTRES = {
    "com": ("https://www.zohoapis.com", "https://accounts.zoho.com"),
    "eu": ("https://www.zohoapis.eu", "https://accounts.zoho.eu"),
    "in": ("https://www.zohoapis.in", "https://accounts.zoho.in"),
    "com.au": ("https://www.zohoapis.com.au", "https://accounts.zoho.com.au"),
    "jp": ("https://www.zohoapis.jp", "https://accounts.zoho.jp"),
    "ca": ("https://www.zohoapis.ca", "https://accounts.zohocloud.ca"),
    "sa": ("https://www.zohoapis.sa", "https://accounts.zoho.sa"),
    "com.cn": ("https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn"),
    "uk": ("https://www.zohoapis.uk", "https://accounts.zoho.uk"),
    "ae": ("https://www.zohoapis.ae", "https://accounts.zoho.ae"),
}
API_ROOTS = {ZohoApi.BOOKS: "/books/v3", ZohoApi.INVENTORY: "/inventory/v1"}
TOKEN_MARGIN = timedelta(seconds=60)  # refresh a minute early, so a token never expires in flight
# Zoho Inventory's "Bulk fetch item details" (GET /inventory/v1/itemdetails?item_ids=…,
# https://www.zoho.com/inventory/api/v1/items/#bulk-fetch-item-details) takes up to 100 ids a call.
ITEM_DETAILS_MAX = 100


def hosts(dc: str) -> tuple[str, str]:
    """(API host, accounts host) of a Zoho data centre."""
    try:
        return DATA_CENTRES[dc]
    except KeyError:
        raise ImproperlyConfigured(f"ZOHO_DC={dc!r} is not one of {', '.join(DATA_CENTRES)}") from None


def configured_hosts() -> tuple[str, str]:
    """(API host, accounts host) from ZOHO_API_BASE / ZOHO_ACCOUNTS_BASE, else ZOHO_DC.

    With both overrides set, ZOHO_DC is not read at all, so any value (or none) is fine; the API
    host may still come from the token's `api_domain` when only ZOHO_ACCOUNTS_BASE is set.
    """
    api, accounts = settings.ZOHO_API_BASE.rstrip("/"), settings.ZOHO_ACCOUNTS_BASE.rstrip("/")
    if api and accounts:
        return api, accounts
    default_api, default_accounts = hosts(settings.ZOHO_DC)
    return api or default_api, accounts or default_accounts


def account_key(accounts_base: str, client_id: str, client_secret: str, refresh_token: str) -> str:
    """The token row of an accounts host + OAuth client + refresh token: a rotated refresh token
    never reuses the old one's access token."""
    return hashlib.sha256("\n".join([accounts_base, client_id, client_secret, refresh_token]).encode()).hexdigest()


def stored_refresh_token() -> str:
    """The refresh token zoho_connect stored last, decrypted ("" when none or unreadable)."""
    row = ZohoToken.objects.exclude(connected_at=None).order_by("-connected_at").first()
    return row.refresh_token if row else ""


def zoho_time(value: datetime) -> str:
    """Zoho's timestamp format, e.g. 2026-06-09T09:45:41-0400 (httpx sends `+` as %2B)."""
    if timezone.is_naive(value):
        raise ValueError("Zoho times must be timezone-aware")
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    has_more: bool
    page: int


def _outcome(error: ZohoError | None) -> CallOutcome:
    if error is None:
        return CallOutcome.OK
    if error.kind.zoho_unwell:
        return CallOutcome.FAILURE
    if error.kind.throttled:
        return CallOutcome.THROTTLED
    return CallOutcome.REJECTED


class ZohoClient:
    def __init__(
        self,
        *,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        organization_id: str | None = None,
        refresh_token: str | None = None,
    ) -> None:
        self._default_api, self.accounts_base = configured_hosts()
        self._api_override = settings.ZOHO_API_BASE.rstrip("/")
        self.organization_id = organization_id or settings.ZOHO_ORGANIZATION_ID
        self._credentials = {
            "client_id": settings.ZOHO_CLIENT_ID,
            "client_secret": settings.ZOHO_CLIENT_SECRET,
            "refresh_token": refresh_token or settings.ZOHO_REFRESH_TOKEN or stored_refresh_token(),
        }
        self._account = account_key(self.accounts_base, *self._credentials.values())
        self._timeout = timeout
        self._sleep = sleep  # the limiter's waits for a slot
        self._http = httpx.Client(timeout=timeout)
        # The shared row's token as this client last read it: a read saved per call. Safe because
        # a token Zoho refuses sends us back to the shared row (`stale`), never to a refresh of our own.
        self._known_token: ZohoToken | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ZohoClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the public API ---------------------------------------------------------------------------
    def list_page(
        self,
        entity: Entity | str,
        page: int = 1,
        *,
        modified_since: datetime | None = None,
        per_page: int = 200,
        params: dict[str, Any] | None = None,
    ) -> Page:
        """One page of list rows (summaries). `modified_since` is sent only where Zoho filters by
        it (Entity.modified_filter); elsewhere Zoho would ignore it silently, so we don't pretend."""
        entity = _entity(entity)
        query: dict[str, Any] = {"page": page, "per_page": per_page}
        if entity.contact_type:
            query["contact_type"] = entity.contact_type
        if modified_since is not None and entity.modified_filter:
            query["last_modified_time"] = zoho_time(modified_since)
        query.update(params or {})
        body = self._call(entity.api, entity.path, query)
        context = body.get("page_context") or {}
        return Page(
            rows=list(body.get(entity.list_key) or []),
            has_more=bool(context.get("has_more_page")),
            page=int(context.get("page") or page),
        )

    def get(self, entity: Entity | str, zoho_id: str) -> dict[str, Any]:
        """The detail object (with lines), unwrapped from its envelope."""
        entity = _entity(entity)
        body = self._call(entity.api, f"{entity.path}/{zoho_id}", {})
        obj = body.get(entity.single_key)
        if not isinstance(obj, dict):
            raise ZohoError(
                f"Zoho answer for {entity.slug} {zoho_id} lacks {entity.single_key!r}", kind=ErrorKind.SERVER
            )
        return obj

    def item_details(self, item_ids: list[str]) -> list[dict[str, Any]]:
        """Inventory items' details (with `locations[]`) for up to ITEM_DETAILS_MAX ids in one call."""
        if not 0 < len(item_ids) <= ITEM_DETAILS_MAX:
            raise ValueError(f"item_details takes 1 to {ITEM_DETAILS_MAX} ids, got {len(item_ids)}")
        body = self._call(ZohoApi.INVENTORY, "itemdetails", {"item_ids": ",".join(item_ids)})
        return [row for row in body.get("items") or [] if isinstance(row, dict)]

    def organizations(self) -> list[dict[str, Any]]:
        """GET /books/v3/organizations: every organisation the token reaches (no organization_id)."""
        return list(self._call(ZohoApi.BOOKS, "organizations", {}, organization=False).get("organizations") or [])

    # --- one authenticated call -----------------------------------------------------------------
    def _call(self, api: ZohoApi, path: str, params: dict[str, Any], *, organization: bool = True) -> dict[str, Any]:
        return self._authenticated(f"{API_ROOTS[api]}/{path}", params, organization=organization)

    def _authenticated(self, url_path: str, params: dict[str, Any], *, organization: bool) -> dict[str, Any]:
        """One call; on 401 one refresh (unless another process already did it) and one retry."""
        now = timezone.now()
        breaker.allow(now, org=self.organization_id)
        if organization:
            params = {**params, "organization_id": self.organization_id}
        token = self._token(now)
        try:
            return self._send(url_path, params, token)
        except ZohoError as exc:
            if exc.kind != ErrorKind.AUTH:
                raise
        token = self._token(timezone.now(), stale=token.access_token)
        try:
            return self._send(url_path, params, token)
        except ZohoError as exc:
            if exc.kind == ErrorKind.AUTH:
                breaker.enter_auth(str(exc), timezone.now(), org=self.organization_id)
            raise

    def _send(self, url_path: str, params: dict[str, Any], token: ZohoToken) -> dict[str, Any]:
        org = self.organization_id
        slot = limiter.acquire(path=url_path, lease_seconds=self._timeout + 5, sleep=self._sleep, org=org)
        response = error = None
        answered = False
        try:
            response = self._request(
                "GET",
                f"{self._api_base(token)}{url_path}",
                params=params,
                headers={"Authorization": f"Zoho-oauthtoken {token.access_token}"},
            )
            body = raise_for_response(response)
            answered = True
            return body
        except ZohoError as exc:
            error = exc
            raise
        finally:
            if answered or error is not None:
                self._account_for(slot, response, error)
            else:  # interrupted: free the slot, tell the breaker nothing
                limiter.release(slot, timezone.now(), outcome=CallOutcome.INTERRUPTED)

    def _account_for(self, slot: limiter.Slot, response: httpx.Response | None, error: ZohoError | None) -> None:
        """Tell the limiter and the breaker how the call went."""
        now, org = timezone.now(), self.organization_id
        outcome = _outcome(error)
        limiter.release(slot, now, outcome=outcome, status=response.status_code if response is not None else None)
        if response is not None:
            limiter.record_headers(response.headers, now, org=org, slot=slot)
        if outcome == CallOutcome.FAILURE:
            breaker.record_failure(str(error), now, org=org)
            return
        if outcome == CallOutcome.THROTTLED:
            limiter.record_throttle(error, now, org=org)
        refused = error is not None and error.kind in (ErrorKind.AUTH, ErrorKind.SCOPE)
        breaker.record_success(now, authenticated=not refused, org=org)

    def _api_base(self, token: ZohoToken) -> str:
        return self._api_override or token.api_domain.rstrip("/") or self._default_api

    # --- the one outbound HTTP seam ---------------------------------------------------------------
    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ZohoError(f"Zoho {method} {url}: timed out ({exc})", kind=ErrorKind.NETWORK) from exc
        except httpx.TransportError as exc:
            raise ZohoError(f"Zoho {method} {url}: {type(exc).__name__}: {exc}", kind=ErrorKind.NETWORK) from exc

    # --- the shared OAuth token ---------------------------------------------------------------------
    def _token(self, now: datetime, *, stale: str | None = None) -> ZohoToken:
        """The cached access token; refreshed by one process at a time, for all of them.

        `stale` is a token Zoho just refused: refresh unless another process already replaced it.
        """
        known = self._known_token
        if stale is None and known is not None and known.usable(now, margin=TOKEN_MARGIN):
            return known
        row = ZohoToken.objects.filter(account=self._account).first()
        if row is not None and row.usable(now, margin=TOKEN_MARGIN) and row.access_token != stale:
            self._known_token = row
            return row
        if not all(self._credentials.values()):
            # Our configuration, not Zoho's answer: no reason to put the breaker in its auth state.
            raise ZohoError(
                "Zoho credentials are not configured: set ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET, then run "
                "`manage.py zoho_connect --code …` (or set ZOHO_REFRESH_TOKEN)",
                kind=ErrorKind.AUTH,
            )
        try:
            with transaction.atomic():
                ZohoToken.objects.bulk_create([ZohoToken(account=self._account)], ignore_conflicts=True)
                row = ZohoToken.objects.select_for_update().get(account=self._account)
                if row.usable(now, margin=TOKEN_MARGIN) and row.access_token != stale:
                    self._known_token = row
                    return row  # refreshed by another process while we waited for the lock
                self._refresh(row, now)
        except ZohoError as exc:
            ZohoToken.objects.filter(account=self._account).update(last_error=str(exc)[:1000])
            if exc.kind == ErrorKind.AUTH:
                breaker.enter_auth(str(exc), now, org=self.organization_id)
            raise
        breaker.clear_auth(now, org=self.organization_id)
        self._known_token = row
        return row

    def _refresh(self, row: ZohoToken, now: datetime) -> None:
        response = self._request(
            "POST",
            f"{self.accounts_base}/oauth/v2/token",
            data={**self._credentials, "grant_type": "refresh_token"},
        )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 500:
            raise ZohoError(
                f"Zoho token refresh: HTTP {response.status_code}", kind=ErrorKind.SERVER, status=response.status_code
            )
        if not isinstance(body, dict) or "error" in body or not body.get("access_token"):
            # Zoho answers a revoked or wrong refresh token with HTTP 200 and {"error": "invalid_code"}.
            error = body.get("error") if isinstance(body, dict) else None
            raise ZohoError(
                f"Zoho token refresh refused: HTTP {response.status_code}, {error or response.text[:200]!r}",
                kind=ErrorKind.AUTH,
                status=response.status_code,
            )
        row.access_token = body["access_token"]
        row.api_domain = str(body.get("api_domain") or "")
        row.expires_at = now + timedelta(seconds=int(body.get("expires_in") or 3600))
        row.refreshed_at = now
        row.refresh_count += 1
        row.last_error = ""
        row.save()


def _entity(entity: Entity | str) -> Entity:
    return entity if isinstance(entity, Entity) else get_entity(entity)
