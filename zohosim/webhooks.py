"""Outbound webhooks from the simulator to TDS Core, authenticated the ways TDS Core accepts.

Bodies come in the shapes Zoho's workflow webhooks send:
- "json": the record under its single key, labelled application/json (Zoho's "Default Payload");
- "json-as-form": the same JSON labelled application/x-www-form-urlencoded, as Inventory does;
- "form-json": a form whose one field, `JSONString`, holds that JSON;
- "form": the record's scalar fields as flat form key/values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

FORM_TYPE = "application/x-www-form-urlencoded"
BODY_FORMATS = ("json", "json-as-form", "form-json", "form")


@dataclass(frozen=True)
class WebhookAuth:
    """Which of TDS Core's schemes a delivery uses; each one set is applied (several may be)."""

    token: str | None = None  # X-TDS-Token header
    secret: str | None = None  # X-TDS-Signature: sha256=<hex HMAC-SHA256 of the raw body>
    zoho_secret: str | None = None  # X-Zoho-Webhook-Signature: see zoho_signature()
    standard_secret: str | None = None  # whsec_…: Standard Webhooks headers, as a relay (Svix…) adds them


def zoho_signature(
    secret: str, query: dict[str, str], body: bytes, form: dict[str, str] | None = None, *, merged: bool = True
) -> str:
    """Hex HMAC-SHA256 of name+value pairs sorted by name, followed by the raw body when it is not
    a form. For a form, Zoho's documented recipe sorts the query's and the form's pairs
    together (`merged`); `merged=False` signs the query's pairs, then the form's, as TDS Core's
    first reading of it did (both are accepted)."""
    if form is None:
        signed = _pairs(query) + body
    elif merged:
        signed = _pairs({**query, **form})
    else:
        signed = _pairs(query) + _pairs(form)
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `id.timestamp.body`, keyed by the secret after `whsec_`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _pairs(pairs: dict[str, str]) -> bytes:
    return "".join(f"{k}{v}" for k, v in sorted(pairs.items())).encode()


def encode(envelope: dict[str, Any], body_format: str) -> tuple[bytes, str, dict[str, str] | None]:
    """The raw body, its content type and, for a form, the pairs it holds."""
    text = json.dumps(envelope, separators=(",", ":"))
    if body_format == "json":
        return text.encode(), "application/json", None
    if body_format == "json-as-form":
        return text.encode(), FORM_TYPE, None
    if body_format == "form-json":
        form = {"JSONString": text}
    elif body_format == "form":
        (obj,) = envelope.values()
        form = {k: _form_value(v) for k, v in obj.items() if not isinstance(v, (list, dict))}
    else:
        raise ValueError(f"body_format must be one of {BODY_FORMATS}")
    return urlencode(form).encode(), FORM_TYPE, form


def _form_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def deliver(
    client: httpx.Client,
    target: str,
    slug: str,
    envelope: dict[str, Any],
    *,
    auth: WebhookAuth,
    now: datetime,
    delivery_id: str,
    method: str = "POST",
    query: dict[str, str] | None = None,
    body_format: str = "json",
    timeout: float = 10.0,
) -> httpx.Response:
    body, content_type, form = encode(envelope, body_format)
    query = dict(query or {})
    headers = {"Content-Type": content_type, "User-Agent": "ZohoBooks-Webhook (simulator)"}
    if auth.token:
        headers["X-TDS-Token"] = auth.token
    if auth.secret:
        headers["X-TDS-Signature"] = "sha256=" + hmac.new(auth.secret.encode(), body, hashlib.sha256).hexdigest()
    if auth.zoho_secret:
        headers["X-Zoho-Webhook-Signature"] = zoho_signature(auth.zoho_secret, query, body, form)
    if auth.standard_secret:
        timestamp = int(now.timestamp())
        headers["webhook-id"] = delivery_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = standard_signature(auth.standard_secret, delivery_id, timestamp, body)
    url = f"{target.rstrip('/')}/webhooks/{slug}"
    if query:
        url += "?" + urlencode(query)
    return client.request(method, url, content=body, headers=headers, timeout=timeout)
