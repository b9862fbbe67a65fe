"""The Zoho Books / Inventory API client (zoho/README.md; SPEC §2, §6).

Every call: breaker (may we call at all?) → shared OAuth token → rate limiter slot → one HTTP
request through `_request()` → `raise_for_response()` → the outcome told to the limiter and the
breaker. A 401 refreshes the token once and retries once; a 429 waits as Zoho asks and retries; a
5xx or a dropped connection retries with a short backoff until the breaker opens. Each retry is a
call of its own, so each takes its own limiter slot.

Call it outside a database transaction (see sync.zoho.limiter).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from sync.entities import Entity
from sync.entities import get as get_entity
from sync.zoho import breaker, limiter
from sync.zoho.errors import ZohoError, raise_for_response
from sync.zoho.models import CallOutcome, ZohoToken
from tdscore import config

__all__ = ["DATA_CENTRES", "Page", "ZohoClient", "ZohoError", "hosts"]

DATA_CENTRES = ("com", "eu", "in", "com.au", "jp", "ca", "sa", "com.cn")
API_ROOTS = {"books": "/books/v3", "inventory": "/inventory/v1"}
TOKEN_MARGIN = timedelta(seconds=60)  # refresh a minute early, so a token never expires in flight
SERVER_RETRY_BASE_SECONDS = 1.0
_THROTTLE_KINDS = {"rate_limit", "daily_limit", "concurrency"}
_ZOHO_UNWELL = {"server", "network"}


def hosts(dc: str) -> tuple[str, str]:
    """(API host, accounts host) of a Zoho data centre. Canada's accounts live on zohocloud.ca."""
    if dc not in DATA_CENTRES:
        raise ImproperlyConfigured(f"ZOHO_DC={dc!r} is not one of {', '.join(DATA_CENTRES)}")
    accounts = "https://accounts.zohocloud.ca" if dc == "ca" else f"https://accounts.zoho.{dc}"
    return f"https://www.zohoapis.{dc}", accounts


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
    if error.kind in _ZOHO_UNWELL:
        return CallOutcome.FAILURE
    if error.kind in _THROTTLE_KINDS:
        return CallOutcome.THROTTLED
    return CallOutcome.REJECTED


class ZohoClient:
    def __init__(
        self,
        *,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        organization_id: str | None = None,
    ) -> None:
        default_api, default_accounts = hosts(settings.ZOHO_DC)
        self._api_override = settings.ZOHO_API_BASE.rstrip("/")
        self._default_api = default_api
        self.accounts_base = (settings.ZOHO_ACCOUNTS_BASE or default_accounts).rstrip("/")
        self.organization_id = organization_id or settings.ZOHO_ORGANIZATION_ID
        self._credentials = {
            "client_id": settings.ZOHO_CLIENT_ID,
            "client_secret": settings.ZOHO_CLIENT_SECRET,
            "refresh_token": settings.ZOHO_REFRESH_TOKEN,
        }
        # The token row is per accounts host + client + refresh token: a rotated refresh token
        # never reuses the old one's access token.
        fingerprint = "\n".join([self.accounts_base, *self._credentials.values()])
        self._account = hashlib.sha256(fingerprint.encode()).hexdigest()
        self._timeout = timeout
        self._sleep = sleep
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

    def iter_pages(
        self, entity: Entity | str, *, start_page: int = 1, modified_since: datetime | None = None
    ) -> Iterator[Page]:
        page = start_page
        while True:
            result = self.list_page(entity, page, modified_since=modified_since)
            yield result
            if not result.has_more:
                return
            page = result.page + 1

    def get(self, entity: Entity | str, zoho_id: str) -> dict[str, Any]:
        """The detail object (with lines), unwrapped from its envelope."""
        entity = _entity(entity)
        body = self._call(entity.api, f"{entity.path}/{zoho_id}", {})
        obj = body.get(entity.single_key)
        if not isinstance(obj, dict):
            raise ZohoError(f"Zoho answer for {entity.slug} {zoho_id} lacks {entity.single_key!r}", kind="server")
        return obj

    # --- calls with their retries -----------------------------------------------------------------
    def _call(self, api: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        url_path = f"{API_ROOTS[api]}/{path}"
        retries = config.get("zoho_call_retries")
        throttled = unwell = 0
        while True:
            try:
                return self._authenticated(url_path, params)
            except ZohoError as exc:
                if exc.status == 429 and exc.kind != "daily_limit" and throttled < retries:
                    throttled += 1  # the limiter now holds every process back as Zoho asked
                elif exc.kind in _ZOHO_UNWELL and unwell < retries:
                    self._sleep(SERVER_RETRY_BASE_SECONDS * 2**unwell)
                    unwell += 1  # until the breaker opens, which refuses the next attempt
                else:
                    raise

    def _authenticated(self, url_path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One call; on 401 one refresh (unless another process already did it) and one retry."""
        now = timezone.now()
        breaker.allow(now, org=self.organization_id)
        token = self._token(now)
        try:
            return self._send(url_path, params, token)
        except ZohoError as exc:
            if exc.kind != "auth":
                raise
        token = self._token(timezone.now(), stale=token.access_token)
        try:
            return self._send(url_path, params, token)
        except ZohoError as exc:
            if exc.kind == "auth":
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
                params={**params, "organization_id": org},
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
        breaker.record_success(now, authenticated=error is None or error.kind not in {"auth", "scope"}, org=org)

    def _api_base(self, token: ZohoToken) -> str:
        return self._api_override or token.api_domain.rstrip("/") or self._default_api

    # --- the one outbound HTTP seam ---------------------------------------------------------------
    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ZohoError(f"Zoho {method} {url}: timed out ({exc})", kind="network") from exc
        except httpx.TransportError as exc:
            raise ZohoError(f"Zoho {method} {url}: {type(exc).__name__}: {exc}", kind="network") from exc

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
            raise ZohoError("Zoho credentials are not configured (ZOHO_CLIENT_ID/SECRET/REFRESH_TOKEN)", kind="auth")
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
            if exc.kind == "auth":
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
                f"Zoho token refresh: HTTP {response.status_code}", kind="server", status=response.status_code
            )
        if not isinstance(body, dict) or "error" in body or not body.get("access_token"):
            # Zoho answers a revoked or wrong refresh token with HTTP 200 and {"error": "invalid_code"}.
            error = body.get("error") if isinstance(body, dict) else None
            raise ZohoError(
                f"Zoho token refresh refused: HTTP {response.status_code}, {error or response.text[:200]!r}",
                kind="auth",
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
