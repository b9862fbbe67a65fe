"""Outbound webhooks from the simulator to TDS Core, authenticated the ways TDS Core accepts (SPEC §5, §6)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx


@dataclass(frozen=True)
class WebhookAuth:
    """Which of TDS Core's schemes a delivery uses; each one set is applied (several may be)."""

    token: str | None = None  # X-TDS-Token header
    secret: str | None = None  # X-TDS-Signature: sha256=<hex HMAC-SHA256 of the raw body>
    zoho_secret: str | None = None  # X-Zoho-Webhook-Signature over sorted query pairs + raw body


def zoho_signature(secret: str, query: dict[str, str], body: bytes) -> str:
    """Hex HMAC-SHA256 of the query's name+value pairs sorted by name, then the raw body (zoho/README.md)."""
    signed = "".join(f"{k}{v}" for k, v in sorted(query.items())).encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def deliver(
    client: httpx.Client,
    target: str,
    slug: str,
    envelope: dict[str, Any],
    *,
    auth: WebhookAuth,
    method: str = "POST",
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> httpx.Response:
    body = json.dumps(envelope, separators=(",", ":")).encode()
    query = dict(query or {})
    headers = {"Content-Type": content_type, "User-Agent": "ZohoBooks-Webhook (simulator)"}
    if auth.token:
        headers["X-TDS-Token"] = auth.token
    if auth.secret:
        headers["X-TDS-Signature"] = "sha256=" + hmac.new(auth.secret.encode(), body, hashlib.sha256).hexdigest()
    if auth.zoho_secret:
        headers["X-Zoho-Webhook-Signature"] = zoho_signature(auth.zoho_secret, query, body)
    url = f"{target.rstrip('/')}/webhooks/{slug}"
    if query:
        url += "?" + urlencode(query)
    return client.request(method, url, content=body, headers=headers, timeout=timeout)
