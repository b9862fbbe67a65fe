"""Zoho accounts' token endpoint as the simulator keeps it: expiring access tokens, revocation, mint
limit, and self-client grant codes (https://www.zoho.com/accounts/protocol/oauth/self-client/authorization-code-flow.html:
a code lives 3–10 minutes, as chosen when it is generated, and works once)."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock

# Zoho accounts: a refresh token mints at most 10 access tokens per 10 minutes.
MINT_WINDOW = timedelta(minutes=10)
FULL_SCOPE = "ZohoBooks.fullaccess.all ZohoInventory.fullaccess.all"
# The console offers a code's life from 3 to 10 minutes.
GRANT_TTL_MIN, GRANT_TTL_DEFAULT, GRANT_TTL_MAX = 180, 600, 600
# Where the simulator answers for the API console's "Generate Code" (Zoho has no such URL).
GRANT_CODE_PATH = "/simulator/grant-code"


@dataclass
class Grant:
    scope: str
    expires_at: datetime
    used: bool = False


class Tokens:
    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        ttl_seconds: int,
        mint_limit: int | None,
    ) -> None:
        self.clock, self.rng = clock, rng
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.ttl_seconds, self.mint_limit = ttl_seconds, mint_limit
        self.revoked = False
        self.minted = 0
        self._lock = threading.Lock()
        self._live: dict[str, tuple[datetime, str]] = {}  # access token → (expiry, scope)
        self._mints: deque[datetime] = deque()
        self._grants: dict[str, Grant] = {}
        self._refresh_scopes: dict[str, str] = {refresh_token: FULL_SCOPE}  # refresh token → scope

    def grant_code(self, scope: str, ttl_seconds: int) -> str:
        """A self-client grant code, as the API console generates it."""
        with self._lock:
            code = f"1000.{self.rng.getrandbits(128):032x}.{self.rng.getrandbits(128):032x}"
            self._grants[code] = Grant(scope, self.clock.now() + timedelta(seconds=ttl_seconds))
        return code

    def console_grant_code(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Zoho's API console "Generate Code" for the self client, as an HTTP call: the client's
        owner (its id and secret) asks for a code with a scope and a life of 3 to 10 minutes."""
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        try:
            ttl = int(params.get("expires_in", GRANT_TTL_DEFAULT))
        except ValueError:
            ttl = -1
        if not GRANT_TTL_MIN <= ttl <= GRANT_TTL_MAX:
            return 400, {"error": "invalid_expires_in", "detail": f"{GRANT_TTL_MIN} to {GRANT_TTL_MAX} seconds"}
        code = self.grant_code(params.get("scope") or FULL_SCOPE, ttl)
        return 200, {"code": code, "expires_in": ttl, "scope": params.get("scope") or FULL_SCOPE}

    def token(self, params: dict[str, str], api_domain: str) -> tuple[int, dict[str, Any]]:
        """Answer `POST /oauth/v2/token`. Zoho reports most failures with HTTP 200 and an `error` key."""
        grant = params.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return 200, {"error": "unsupported_grant_type"}
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return 200, {"error": "invalid_client"}
        if grant == "authorization_code":
            return self._exchange(params.get("code", ""), api_domain)
        return self.refresh(params, api_domain)

    def _exchange(self, code: str, api_domain: str) -> tuple[int, dict[str, Any]]:
        now = self.clock.now()
        with self._lock:
            found = self._grants.get(code)
            if found is None or found.used or found.expires_at <= now:
                return 200, {"error": "invalid_code"}
            found.used = True
            refresh = f"1000.{self.rng.getrandbits(128):032x}.{self.rng.getrandbits(128):032x}"
            self._refresh_scopes[refresh] = found.scope
        status, body = self.refresh({"refresh_token": refresh}, api_domain)
        return status, {**body, "refresh_token": refresh}

    def refresh(self, params: dict[str, str], api_domain: str) -> tuple[int, dict[str, Any]]:
        now = self.clock.now()
        with self._lock:
            scope = self._refresh_scopes.get(params.get("refresh_token", ""))
            if self.revoked or scope is None:
                return 200, {"error": "invalid_code"}
            while self._mints and self._mints[0] <= now - MINT_WINDOW:
                self._mints.popleft()
            if self.mint_limit is not None and len(self._mints) >= self.mint_limit:
                return 400, {
                    "error_description": "You have made too many requests continuously. Please try again after some time.",
                    "error": "Access Denied",
                    "status": "failure",
                }
            self._mints.append(now)
            self.minted += 1
            self._live = {t: live for t, live in self._live.items() if live[0] > now}
            token = f"1000.{self.rng.getrandbits(128):032x}.{self.rng.getrandbits(128):032x}"
            self._live[token] = (now + timedelta(seconds=self.ttl_seconds), scope)
        return 200, {
            "access_token": token,
            "scope": scope,
            "api_domain": api_domain,
            "token_type": "Bearer",
            "expires_in": self.ttl_seconds,
        }

    def scope(self, token: str) -> str | None:
        """The scope of a live access token, or None when it is unknown or expired."""
        now = self.clock.now()
        with self._lock:
            live = self._live.get(token)
            return live[1] if live is not None and live[0] > now else None

    def expire(self) -> None:
        with self._lock:
            self._live.clear()

    def revoke(self) -> None:
        # Revoking the grant ends its access tokens too, so the next call fails and the refresh fails.
        with self._lock:
            self.revoked = True
            self._live.clear()

    def restore(self) -> None:
        with self._lock:
            self.revoked = False
