"""Who may post a webhook (SPEC §2, §5, §6): four schemes, any one configured passes.

Every variable may hold several values (rotation); each is tried, and every comparison is
constant-time (`hmac.compare_digest`), so a wrong guess learns nothing from the answer's timing.
Repeated failures from one address are counted in the cache and answered 429; a request that
authenticates is never counted or refused, because Zoho does not retry a refused change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from sync.models import InboxEvent
from tdscore import config

Source = InboxEvent.Source
FORM_TYPE = "application/x-www-form-urlencoded"
# Standard Webhooks: a timestamp further than this from now (either way) is a replay or a bad clock.
STANDARD_WEBHOOKS_TOLERANCE_SECONDS = 5 * 60


def authenticate(request: HttpRequest, body: bytes, *, now: datetime) -> str | None:
    """The `InboxEvent.Source` of the first scheme the request satisfies, or None."""
    if _token_ok(request):
        return Source.TOKEN
    if _tds_signature_ok(request, body):
        return Source.SIGNATURE
    if _zoho_signature_ok(request, body):
        return Source.ZOHO_SIGNATURE
    if _standard_webhooks_ok(request, body, now):
        return Source.STANDARD_WEBHOOKS
    return None


def _matches(given: str, accepted: Iterable[str]) -> bool:
    given_bytes = given.encode()
    # No early exit: every configured value is compared, so timing does not tell which one was near.
    found = False
    for value in accepted:
        found |= hmac.compare_digest(given_bytes, value.encode())
    return found


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _token_ok(request: HttpRequest) -> bool:
    given = request.headers.get("X-TDS-Token") or request.GET.get("token")
    return bool(given and settings.TDS_WEBHOOK_TOKEN) and _matches(given, settings.TDS_WEBHOOK_TOKEN)


def _tds_signature_ok(request: HttpRequest, body: bytes) -> bool:
    given = request.headers.get("X-TDS-Signature", "")
    if not given.startswith("sha256=") or not settings.TDS_WEBHOOK_SECRET:
        return False
    expected = [_hmac(secret.encode(), body).hex() for secret in settings.TDS_WEBHOOK_SECRET]
    return _matches(given.removeprefix("sha256=").strip().lower(), expected)


def zoho_signed_messages(query_string: str, content_type: str, body: bytes) -> list[bytes]:
    """What Zoho signs: query pairs sorted by name as name+value, then the form pairs likewise,
    or the raw body when it is not a form (SPEC §6).

    A body labelled as a form may really be JSON (Inventory does this), so for a form both
    readings are candidates; each still needs the secret to match.
    """
    query_pairs = parse_qsl(query_string, keep_blank_values=True)
    query = _pairs_sorted(query_pairs)
    messages = [query + body]
    if content_type == FORM_TYPE:
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            form = []
        if form:
            # Zoho's documented recipe sorts query and form pairs together ("merged"); earlier
            # deliveries were checked with the query's pairs first, then the form's: accept both.
            messages[:0] = [query + _pairs_sorted(form), _pairs_sorted(query_pairs + form)]
    return messages


def _pairs_sorted(pairs: list[tuple[str, str]]) -> bytes:
    # Sorted by name only (stable), so repeated names keep the order they came in.
    return "".join(name + value for name, value in sorted(pairs, key=lambda pair: pair[0])).encode()


def _zoho_signature_ok(request: HttpRequest, body: bytes) -> bool:
    given = request.headers.get("X-Zoho-Webhook-Signature", "").strip()
    if not given or not settings.TDS_ZOHO_WEBHOOK_SECRET:
        return False
    messages = zoho_signed_messages(request.META.get("QUERY_STRING", ""), request.content_type or "", body)
    expected = []
    for secret in settings.TDS_ZOHO_WEBHOOK_SECRET:
        for message in messages:
            digest = _hmac(secret.encode(), message)
            expected += [digest.hex(), base64.b64encode(digest).decode()]
    # Hex may come in either case; base64 is case-sensitive, so compare both spellings of `given`.
    return _matches(given, expected) or _matches(given.lower(), expected)


def _standard_webhooks_ok(request: HttpRequest, body: bytes, now: datetime) -> bool:
    msg_id = request.headers.get("webhook-id", "")
    timestamp = request.headers.get("webhook-timestamp", "")
    signatures = request.headers.get("webhook-signature", "")
    if not (msg_id and timestamp.isdigit() and signatures and settings.TDS_STANDARD_WEBHOOK_SECRET):
        return False
    if abs(now.timestamp() - int(timestamp)) > STANDARD_WEBHOOKS_TOLERANCE_SECONDS:
        return False
    message = f"{msg_id}.{timestamp}.".encode() + body
    expected = []
    for secret in settings.TDS_STANDARD_WEBHOOK_SECRET:
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            continue
        expected.append(base64.b64encode(_hmac(key, message)).decode())
    # The header may carry several space-separated `v1,<b64>` values (the sender rotating keys).
    given = [sig for version, _, sig in (part.partition(",") for part in signatures.split()) if version == "v1"]
    return any(_matches(sig, expected) for sig in given)


# --- Throttling failures -----------------------------------------------------------------------


def failure_key(address: str) -> str:
    return f"tds:webhook-auth-failures:{address}"


def record_failure(address: str) -> bool:
    """Count one failed attempt from `address`; True when it is over the limit (answer 429).

    A fixed window in the cache: the first failure starts it, the count expires with it. A
    broken cache or database must not turn a 401 into a 500, so it then counts nothing.
    """
    key = failure_key(address)
    try:
        window, limit = config.get("webhook_auth_failure_window_seconds"), config.get("webhook_auth_failure_limit")
        failures = 1 if cache.add(key, 1, timeout=window) else cache.incr(key)
    except Exception:  # the cache (Redis) or the configuration table is down: the 401 still stands
        return False
    return failures > limit
