"""Who may post a webhook: four schemes, any one configured passes.

Every variable may hold several values (rotation); each is tried, and every comparison is
constant-time (`hmac.compare_digest`), so a wrong guess learns nothing from the answer's timing.
Repeated failures from one address are counted across processes and answered 429; a request
that authenticates is never counted or refused, because Zoho does not retry a refused change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection, transaction
from django.http import HttpRequest

from sync.config_keys import WEBHOOK_AUTH_FAILURE_LIMIT, WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS
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
    or the raw body when it is not a form.

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


def record_failure(address: str, *, now: datetime) -> bool:
    """Count one failed attempt from `address`; True when it is over the limit (answer 429).

    A fixed window: the first failure starts it, the count restarts with the next window. One count
    for every process: in the cache when it is shared (Redis), else in tds_webhook_auth_failures.
    When that store fails, this process counts alone (and stops trying it for a few seconds, so
    a flood of bad requests during an outage costs no connection attempts): a 401 never becomes
    a 500 or a wait, and the throttle still holds per process.
    """
    failures = None
    if time.monotonic() >= _shared.down_until:
        try:
            window, limit = config.get(WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS), config.get(WEBHOOK_AUTH_FAILURE_LIMIT)
            failures = _count_shared(address[:64], now, window)
        except Exception:  # the configuration table, the database or the cache (Redis) is down
            _shared.down_until = time.monotonic() + SHARED_RETRY_SECONDS
    if failures is None:
        # The keys' defaults still protect while the configuration cannot be read.
        window, limit = WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS.default, WEBHOOK_AUTH_FAILURE_LIMIT.default
        failures = _local.count(address, now, window)
    return failures > limit


# After the shared count failed, how long this process counts alone before trying it again.
SHARED_RETRY_SECONDS = 5.0


# Plan: the primary key (address) arbitrates the upsert; one row per address that failed lately.
COUNT_FAILURE = """
    INSERT INTO tds_webhook_auth_failures (address, window_started_at, failures) VALUES (%s, %s, 1)
    ON CONFLICT (address) DO UPDATE SET
        failures = CASE WHEN tds_webhook_auth_failures.window_started_at > %s
                        THEN tds_webhook_auth_failures.failures + 1 ELSE 1 END,
        window_started_at = CASE WHEN tds_webhook_auth_failures.window_started_at > %s
                                 THEN tds_webhook_auth_failures.window_started_at ELSE excluded.window_started_at END
    RETURNING failures
"""
# Plan: a sequential scan of a table that holds only addresses that failed within a window or two.
FORGET_OLD_WINDOWS = "DELETE FROM tds_webhook_auth_failures WHERE window_started_at <= %s"


def _count_shared(address: str, now: datetime, window: int) -> int:
    cache = caches["default"]
    if not isinstance(cache, LocMemCache | DummyCache):  # shared by every process (Redis)
        return 1 if cache.add(failure_key(address), 1, timeout=window) else cache.incr(failure_key(address))
    started_before = connection.ops.adapt_datetimefield_value(now - timedelta(seconds=window))
    # A savepoint inside a caller's transaction, so a failure here cannot poison it.
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
        cursor.execute(
            COUNT_FAILURE, [address, connection.ops.adapt_datetimefield_value(now), started_before, started_before]
        )
        (failures,) = cursor.fetchone()
        if failures == 1:  # a new window for this address: the moment to drop windows that ended
            cursor.execute(FORGET_OLD_WINDOWS, [started_before])
    return failures


class _LocalCounts:
    """The per-process fallback: {address: (window start, failures)}, bounded."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[str, tuple[datetime, int]] = {}

    def count(self, address: str, now: datetime, window: int) -> int:
        with self.lock:
            started, failures = self.windows.get(address, (now, 0))
            if now - started >= timedelta(seconds=window):
                started, failures = now, 0
            if len(self.windows) >= self.LIMIT and address not in self.windows:
                self.windows.clear()
            self.windows[address] = (started, failures + 1)
            return failures + 1


class _SharedState:
    down_until = float("-inf")


_local = _LocalCounts()
_shared = _SharedState()
