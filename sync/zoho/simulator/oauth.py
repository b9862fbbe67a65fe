"""Zoho accounts' token endpoint as the simulator keeps it: expiring access tokens, revocation, mint limit."""

from __future__ import annotations

import random
import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock

# Zoho accounts: a refresh token mints at most 10 access tokens per 10 minutes.
MINT_WINDOW = timedelta(minutes=10)


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
        self._live: dict[str, datetime] = {}
        self._mints: deque[datetime] = deque()

    def refresh(self, params: dict[str, str], api_domain: str) -> tuple[int, dict[str, Any]]:
        """Answer `POST /oauth/v2/token`. Zoho reports most failures with HTTP 200 and an `error` key."""
        if params.get("grant_type") != "refresh_token":
            return 200, {"error": "unsupported_grant_type"}
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return 200, {"error": "invalid_client"}
        now = self.clock.now()
        with self._lock:
            if self.revoked or params.get("refresh_token") != self.refresh_token:
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
            self._live = {t: expires for t, expires in self._live.items() if expires > now}
            token = f"1000.{self.rng.getrandbits(128):032x}.{self.rng.getrandbits(128):032x}"
            self._live[token] = now + timedelta(seconds=self.ttl_seconds)
        return 200, {
            "access_token": token,
            "scope": "ZohoBooks.fullaccess.all ZohoInventory.fullaccess.all",
            "api_domain": api_domain,
            "token_type": "Bearer",
            "expires_in": self.ttl_seconds,
        }

    def valid(self, token: str) -> bool:
        now = self.clock.now()
        with self._lock:
            expires = self._live.get(token)
            return expires is not None and expires > now

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
