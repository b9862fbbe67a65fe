"""Webhook tests post through Django's test client: the real view, URLconf and middleware."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from sync import webhook_auth
from sync.webhook_auth import failure_key

TEST_CLIENT_ADDRESS = "127.0.0.1"  # REMOTE_ADDR of Django's test client
SAMPLES = Path(__file__).resolve().parents[2] / "zohosim" / "samples"  # real Zoho bodies, as recorded

# Two values each: the first is the old one still accepted while the second rolls out.
TOKENS = ["token-old-1", "token-new-2"]
SECRETS = ["secret-old-1", "secret-new-2"]
ZOHO_SECRETS = ["OldZohoSecret2025", "TdsZohoSecret2026"]
STANDARD_SECRETS = ["whsec_" + "b2xkLXNlY3JldC1vbGQtMTIzNDU2Nzg5MA==", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]


@pytest.fixture(autouse=True)
def webhook_secrets(settings):
    settings.TDS_WEBHOOK_TOKEN = TOKENS
    settings.TDS_WEBHOOK_SECRET = SECRETS
    settings.TDS_ZOHO_WEBHOOK_SECRET = ZOHO_SECRETS
    settings.TDS_STANDARD_WEBHOOK_SECRET = STANDARD_SECRETS
    # The failure throttle counts in the database (rolled back with each test) or a shared cache;
    # each test starts from a clean count. Only our key is removed: the cache may be a Redis
    # shared with other processes. The per-process fallback is emptied too.
    cache.delete(failure_key(TEST_CLIENT_ADDRESS))
    webhook_auth._local.windows.clear()
    webhook_auth._shared.down_until = float("-inf")
    yield settings
    cache.delete(failure_key(TEST_CLIENT_ADDRESS))


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def deliver(
    client,
    entity: str,
    body: Any,
    *,
    method: str = "POST",
    content_type: str | None = "application/json",
    query: str = "",
    auth: bool = True,
    **headers: str,
):
    """Send one webhook; `body` is bytes as-is, anything else as JSON. Token auth unless auth=False."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if auth:
        headers.setdefault("X-TDS-Token", TOKENS[1])
    extra = {} if content_type is not None else {"CONTENT_TYPE": ""}
    return client.generic(
        method,
        f"/webhooks/{entity}{query}",
        data,
        content_type=content_type or "",
        headers=headers,
        **extra,
    )
