"""The one way the HTTP channels post: httpx with a timeout, answers sorted into transient and permanent."""

from __future__ import annotations

import threading

import httpx

from alerts.channels import ChannelError

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Worth another try later: the receiver is busy or down. Any other 4xx (401, 403, 404, 410, a 400
# for a body it will never accept) is refused for good: retrying would be refused the same way.
TRANSIENT = {408, 425, 429}

# One client per process, shared by the channel threads (httpx clients are thread-safe): its TLS
# context is built once (a few hundred CA certificates) and connections to Slack or Telegram are kept.
_client: httpx.Client | None = None
_lock = threading.Lock()


def client() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(timeout=TIMEOUT)
        return _client


def post(url: str, *, name: str, json: object | None = None, content: bytes | None = None, headers=None) -> None:
    try:
        answer = client().post(url, json=json, content=content, headers=headers)
    except httpx.HTTPError as exc:
        raise ChannelError(f"{name}: {type(exc).__name__}: {exc}", permanent=False) from exc
    if answer.is_success:
        return
    permanent = answer.status_code < 500 and answer.status_code not in TRANSIENT
    raise ChannelError(f"{name} answered {answer.status_code}: {answer.text[:200]}", permanent=permanent)
