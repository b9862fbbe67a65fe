"""The simulator's HTTP face: Zoho accounts' token endpoint and the Books v3 / Inventory v1 REST API.

Order of checks per API request, as Zoho answers: injected faults, the OAuth token (401 code 14),
the organisation, the limits (429 codes 45, 44, 1070), then the route. Every API answer carries
`x-rate-limit-limit/remaining/reset` (books-get-item-response-headers.json) when it enforces a daily
limit (see limits.Verdict).
"""

from __future__ import annotations

import contextlib
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .clock import parse_zoho
from .limits import Verdict
from .modules import MODULES, Api, Filter, Module
from .oauth import GRANT_CODE_PATH
from .store import SortRefused, detail

if TYPE_CHECKING:
    from . import ZohoSimulator

MAX_PER_PAGE = 200
# Zoho Inventory's bulk item details take up to 100 ids (https://www.zoho.com/inventory/api/v1/items/).
ITEM_DETAILS_MAX = 100
# The scope family an API needs of the token: without it Zoho answers 401 code 57.
SCOPES = {Api.BOOKS: "ZohoBooks.", Api.INVENTORY: "ZohoInventory."}

# Zoho's messages (zohosim/samples/books-error-*.json and the Books API "Errors" page).
MESSAGES = {
    2: "Invalid value passed for {what}",
    5: "Invalid URL Passed",
    14: "Invalid OAuth token.",
    37: "The HTTP method {what} is not allowed for the requested resource",
    44: (
        "For security reasons your organization has been blocked as it have exceeded the maximum number of "
        "requests per minute that can originate from an organization."
    ),
    45: "The API call for this organization has exceeded the maximum call rate limit of {what}.",
    57: "You are not authorized to perform this operation",
    1000: "Internal error",
    1002: "{what} does not exist.",
    1070: "You have reached the maximum number of in process requests allowed. Kindly try again after some time.",
    6041: "This user is not associated with the CompanyID/CompanyName:{what}.",
}
DEFAULT_CODE = {400: 2, 401: 14, 403: 57, 404: 1002, 405: 37, 429: 44}


def error_body(code: int, what: str = "") -> dict[str, Any]:
    return {"code": code, "message": MESSAGES.get(code, "Internal error").format(what=what)}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # concurrency tests open many connections at once

    def __init__(self, sim: ZohoSimulator, port: int) -> None:
        self.sim = sim
        super().__init__(("127.0.0.1", port), Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects of Zoho
    timeout = 60  # idle keep-alive connections end on their own
    server: Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, delayed ACKs add ~40 ms to every call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # the simulator's record is sim.requests

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- dispatch -------------------------------------------------------------------------------
    def _handle(self, method: str) -> None:
        sim = self.server.sim
        if sim._stopping.is_set():
            return self._drop()  # a kept-alive connection outlives the listener; a stopped Zoho answers nothing
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = url.path
        sim._record(method, path, params)
        api = next((candidate for candidate in Api if path.startswith(candidate.prefix)), None)
        delay = 0.0
        for fault in sim._faults.take(self.path, api is not None):  # path and query: page=4 narrows too
            if fault.kind == "drop":
                return self._drop()
            if fault.kind == "slow":
                delay = fault.seconds
            if fault.kind == "fail":
                sim._stopping.wait(delay)
                code = fault.code if fault.code is not None else DEFAULT_CODE.get(fault.status, 1000)
                what = str(sim._limits.headers().limit or "") if code == 45 else ""
                return self._send(fault.status, error_body(code, what), sim._limits.headers() if api else None)
        if api is not None:
            return self._api(method, api, path[len(api.prefix) :].strip("/").split("/"), params, delay)
        sim._stopping.wait(delay)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if path.rstrip("/") == "/oauth/v2/token" and method == "POST":
            return self._send(*sim._tokens.token({**params, **form}, sim.url))
        if path.rstrip("/") == GRANT_CODE_PATH and method == "POST":
            return self._send(*sim._tokens.console_grant_code({**params, **form}))
        self._send(404, error_body(5))

    def _api(self, method: str, api: Api, parts: list[str], params: dict[str, str], delay: float) -> None:
        sim = self.server.sim
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        scope = sim._tokens.scope(token.strip()) if scheme == "Zoho-oauthtoken" else None
        if scope is None:
            return self._send(401, error_body(14), sim._limits.headers())
        if SCOPES[api] not in scope:
            return self._send(401, error_body(57), sim._limits.headers())
        org = params.get("organization_id", "")
        if parts == ["organizations"]:
            pass  # the one call that needs no organisation: it lists them
        elif org != sim.organization_id:
            return self._send(400, error_body(6041, org), sim._limits.headers())
        verdict = sim._limits.admit()
        if verdict.code is not None:
            return self._send(429, error_body(verdict.code, str(verdict.limit)), verdict)
        try:
            # A slow answer holds its concurrency slot while it waits, as a slow Zoho request does.
            sim._stopping.wait(delay)
            try:
                status, payload = self._route(method, api, parts, params)
            except Exception:  # a simulator bug answers as Zoho's own failures do, never a dropped line
                status, payload = 500, error_body(1000)
            self._send(status, payload, verdict)
        finally:
            sim._limits.release()

    def _route(self, method: str, api: Api, parts: list[str], params: dict[str, str]) -> tuple[int, dict | bytes]:
        sim = self.server.sim
        if parts == ["organizations"]:
            return self._only_get(method) or (200, sim.organizations())
        if parts == ["locations"]:
            return self._only_get(method) or (200, sim.location_list())
        if api == Api.INVENTORY and parts == ["itemdetails"]:
            return self._only_get(method) or self._item_details(params)
        if not parts or parts[0] not in MODULES or len(parts) > 2:
            return 404, error_body(5)
        module = MODULES[parts[0]]
        if len(parts) == 1:
            return self._only_get(method) or self._list(api, module, params)
        zoho_id = parts[1]
        if method == "DELETE":
            if sim._store.remove(module.path, zoho_id):
                return 200, {"code": 0, "message": f"The {module.noun.lower()} has been deleted."}
            return 404, error_body(1002, module.noun)
        if refused := self._only_get(method):
            return refused
        obj = sim._store.raw(module.path, zoho_id)
        if obj is None:
            return 404, error_body(1002, module.noun)
        return 200, {"code": 0, "message": "success", module.single_key: detail(module.path, obj)}

    def _item_details(self, params: dict[str, str]) -> tuple[int, dict]:
        ids = [i for i in params.get("item_ids", "").split(",") if i]
        if not 0 < len(ids) <= ITEM_DETAILS_MAX:
            return 400, error_body(2, "item_ids")
        store = self.server.sim._store
        found = [detail("items", obj) for obj in (store.raw("items", i) for i in ids) if obj is not None]
        return 200, {"code": 0, "message": "success", "items": found}

    def _only_get(self, method: str) -> tuple[int, dict] | None:
        return None if method == "GET" else (405, error_body(37, method))

    def _list(self, api: Api, module: Module, params: dict[str, str]) -> tuple[int, dict | bytes]:
        try:
            page = int(params.get("page") or 1)
            per_page = min(int(params.get("per_page") or MAX_PER_PAGE), MAX_PER_PAGE)
        except ValueError:
            return 400, error_body(2, "page")
        if page < 1 or per_page < 1:
            return 400, error_body(2, "page")
        # A module's filters hold on its own API: Books' item list has no modified-time filter.
        filters = module.filters if api == module.api else frozenset()
        modified_since = None
        if Filter.LAST_MODIFIED_TIME in filters and params.get(Filter.LAST_MODIFIED_TIME):
            # A `+` sent unencoded arrives as a space; Zoho reads it as the offset's sign.
            modified_since = parse_zoho(params[Filter.LAST_MODIFIED_TIME].replace(" ", "+"))
            if modified_since is None:
                return 400, error_body(2, Filter.LAST_MODIFIED_TIME)
        sim = self.server.sim
        try:
            result = sim._store.list_page(
                module.path,
                page=page,
                per_page=per_page,
                modified_since=modified_since,
                contact_type=params.get(Filter.CONTACT_TYPE) if Filter.CONTACT_TYPE in filters else None,
                sort_column=params.get("sort_column"),
                sort_order=params.get("sort_order"),
            )
        except SortRefused:
            return 400, error_body(2, "sort_column")
        sim._after_list(module.path, page)
        page_context = {
            "page": page,
            "per_page": per_page,
            "has_more_page": result.has_more,
            "report_name": result.report_name,
            "applied_filter": "Status.All",
            "sort_column": result.sort_column,
            "sort_order": result.sort_order,
        }
        head = f'{{"code":0,"message":"success","{module.list_key}":['.encode()
        tail = b'],"page_context":' + json.dumps(page_context).encode() + b"}"
        return 200, head + b",".join(result.rows) + tail

    # -- answers --------------------------------------------------------------------------------
    def _send(self, status: int, payload: dict[str, Any] | bytes, limits: Verdict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if limits is not None and limits.limit is not None:
            self.send_header("x-rate-limit-limit", str(limits.limit))
            self.send_header("x-rate-limit-remaining", str(limits.remaining))
            self.send_header("x-rate-limit-reset", str(limits.reset))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        # The connection closes with no answer at all, as a reset load balancer does.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
