"""The Zoho rate limiter, shared by every process through the database.

Zoho allows 100 calls a minute per organisation, a daily cap set by the plan and a few calls in
flight at once (zoho/README.md "Limits and errors"). Every call takes a slot here first:
`try_acquire()` locks the organisation's `LimiterState` row, counts the calls started in the last
minute (a sliding window over `ZohoCall` rows, so no 60-second span ever holds more than the cap,
whatever the simulator's or Zoho's window alignment) and the calls in flight, and either records the
call or says how long to wait. The day is Zoho's day: its `x-rate-limit-reset` header moves our
reset time, its `x-rate-limit-limit` is the day's cap and its `x-rate-limit-remaining` is what is
left: Zoho's own numbers win over our belief (the plan's cap, ZOHO_DAILY_CAP, our count).

Call Zoho outside a database transaction: a slot recorded inside one is invisible to the other
processes until it commits, and the row lock would be held until then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from sync.zoho.config_keys import ZOHO_RATE_LIMIT_MAX_WAIT_SECONDS
from sync.zoho.errors import ErrorKind, ZohoError
from sync.zoho.models import CallOutcome, LimiterState, ZohoCall
from tdscore import config

MINUTE_CAP = 100
MINUTE = timedelta(seconds=60)
# Our clock stamps a call a moment before Zoho receives it: keep each slot a little longer than
# a minute so Zoho never sees 101 calls in its own minute.
WINDOW_GUARD = timedelta(milliseconds=500)
# Zoho Books API limits by plan (https://www.zoho.com/books/api/v3/introduction/#api-call-limit).
DAILY_CAPS = {
    "free": 1000,
    "standard": 2000,
    "professional": 5000,
    "premium": 10000,
    "elite": 10000,
    "ultimate": 10000,
}
CONCURRENCY_CAPS = {"free": 5}  # every paid plan: 10
PAID_CONCURRENCY_CAP = 10
CONCURRENCY_POLL_SECONDS = 0.2
THROTTLE_PAUSE_SECONDS = 60.0  # after a 429 code 44 without Retry-After: Zoho blocks for the minute
CONCURRENCY_PAUSE_SECONDS = 2.0  # after a 429 code 1070
CALL_LOG_KEPT = timedelta(days=2)
PRUNE_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Usage:
    calls_today: int
    daily_cap: int
    minute_used: int
    minute_cap: int
    remaining_today: int
    remaining_minute: int
    reset_at: datetime  # when the Zoho day ends and the daily count starts again


@dataclass(frozen=True)
class Slot:
    call_id: int
    organization_id: str
    # The day as the limiter saw it when granting the slot, so the answer's headers need no read
    # when they agree with it (the usual case).
    reported_remaining: int | None = None
    day_resets_at: datetime | None = None
    reported_limit: int | None = None


def organization(org: str | None = None) -> str:
    return org or settings.ZOHO_ORGANIZATION_ID


def configured_cap() -> int:
    """The cap we believe until Zoho tells us: ZOHO_DAILY_CAP, else the plan's."""
    if settings.ZOHO_DAILY_CAP:
        return settings.ZOHO_DAILY_CAP
    return DAILY_CAPS.get(settings.ZOHO_PLAN.lower(), DAILY_CAPS["free"])


def daily_cap(state: LimiterState | None = None) -> int:
    """The day's cap: Zoho's x-rate-limit-limit once it has sent one, else configured_cap()."""
    if state is not None and state.reported_limit:
        return state.reported_limit
    return configured_cap()


def concurrency_cap() -> int:
    return CONCURRENCY_CAPS.get(settings.ZOHO_PLAN.lower(), PAID_CONCURRENCY_CAP)


def _next_local_midnight(now: datetime) -> datetime:
    today = timezone.localtime(now).date()
    return timezone.make_aware(datetime.combine(today + timedelta(days=1), datetime.min.time()))


def _roll_day(state: LimiterState, now: datetime, *, resets_at: datetime | None = None) -> None:
    """Start a new day on the state (in memory) when the current one is over."""
    if state.day_resets_at is not None and now < state.day_resets_at:
        return
    state.calls_today = 0
    state.reported_remaining = None
    state.day_blocked = False
    state.day_resets_at = resets_at or _next_local_midnight(now)


def _remaining_today(state: LimiterState) -> int:
    if state.day_blocked:
        return 0
    if state.reported_remaining is not None:
        # Zoho's count, lowered by each call we made since: it also sees calls other clients of
        # the organisation made, and a cap it raised.
        return state.reported_remaining
    return max(0, daily_cap(state) - state.calls_today)


def _locked_state(org: str, now: datetime) -> LimiterState:
    state = LimiterState.objects.select_for_update().filter(organization_id=org).first()
    if state is None:  # the first call ever: create the row, then lock it like everyone else
        LimiterState.objects.bulk_create([LimiterState(organization_id=org)], ignore_conflicts=True)
        state = LimiterState.objects.select_for_update().get(organization_id=org)
    _roll_day(state, now)
    return state


def _minute_calls(org: str, now: datetime):
    return ZohoCall.objects.filter(organization_id=org, started_at__gt=now - MINUTE - WINDOW_GUARD)


def _prune(state: LimiterState, now: datetime) -> None:
    # Retention from the first day: the call log only serves the last minute, the breaker's
    # window and an operator looking at yesterday.
    if state.pruned_at is None or now - state.pruned_at > PRUNE_EVERY:
        ZohoCall.objects.filter(organization_id=state.organization_id, started_at__lt=now - CALL_LOG_KEPT).delete()
        state.pruned_at = now


def try_acquire(now: datetime, *, path: str = "", lease_seconds: float = 60.0, org: str | None = None) -> Slot | float:
    """Record a call and return its slot, or return the seconds to wait before asking again.

    Raises ZohoError when the day is spent: kind `budget` by our count, `daily_limit` when Zoho
    said so (code 45).
    """
    org = organization(org)
    with transaction.atomic():
        state = _locked_state(org, now)
        _prune(state, now)
        if state.day_blocked or _remaining_today(state) <= 0:
            kind = ErrorKind.DAILY_LIMIT if state.day_blocked else ErrorKind.BUDGET
            raise ZohoError(
                f"Zoho daily call budget spent ({state.calls_today} of {daily_cap(state)} today); "
                f"it resets at {state.day_resets_at:%Y-%m-%d %H:%M %Z}",
                kind=kind,
                retry_after=(state.day_resets_at - now).total_seconds(),
            )
        wait = _wait_seconds(state, org, now)
        if wait:
            state.save()
            return wait
        call = ZohoCall.objects.create(
            organization_id=org,
            path=path[:200],
            started_at=now,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        state.calls_today += 1
        if state.reported_remaining is not None:
            state.reported_remaining = max(0, state.reported_remaining - 1)
        state.save()
    return Slot(call.pk, org, state.reported_remaining, state.day_resets_at, state.reported_limit)


def _wait_seconds(state: LimiterState, org: str, now: datetime) -> float:
    if state.paused_until and state.paused_until > now:
        return (state.paused_until - now).total_seconds()
    window_start = now - MINUTE - WINDOW_GUARD
    in_window = Q(started_at__gt=window_start)
    in_flight = Q(finished_at__isnull=True, lease_until__gt=now)
    counts = ZohoCall.objects.filter(in_window | in_flight, organization_id=org).aggregate(
        used=Count("pk", filter=in_window), in_flight=Count("pk", filter=in_flight)
    )
    if counts["used"] >= MINUTE_CAP:
        # The slot frees when the call that put us at the cap leaves the window.
        recent = _minute_calls(org, now).order_by("started_at").values_list("started_at", flat=True)
        freeing = recent[counts["used"] - MINUTE_CAP]
        return max(0.01, (freeing + MINUTE + WINDOW_GUARD - now).total_seconds())
    if counts["in_flight"] >= concurrency_cap():
        return CONCURRENCY_POLL_SECONDS
    return 0.0


def acquire(
    *,
    path: str = "",
    lease_seconds: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    max_wait: float | None = None,
    org: str | None = None,
) -> Slot:
    """Wait for a slot, at most `zoho_rate_limit_max_wait_seconds` in all, then give up (rate_limit)."""
    if max_wait is None:
        max_wait = config.get(ZOHO_RATE_LIMIT_MAX_WAIT_SECONDS)
    waited = 0.0
    while True:
        granted = try_acquire(timezone.now(), path=path, lease_seconds=lease_seconds, org=org)
        if isinstance(granted, Slot):
            return granted
        if waited + granted > max_wait:
            raise ZohoError(
                f"no Zoho call slot within {max_wait:g} s (next in {granted:.1f} s)",
                kind=ErrorKind.RATE_LIMIT,
                retry_after=granted,
            )
        sleep(granted)
        waited += granted


def release(slot: Slot, now: datetime, *, outcome: CallOutcome, status: int | None = None) -> None:
    ZohoCall.objects.filter(pk=slot.call_id).update(finished_at=now, outcome=outcome, status=status)


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


def record_headers(
    headers: Mapping[str, str], now: datetime, *, org: str | None = None, slot: Slot | None = None
) -> None:
    """Take in Zoho's own view of the day: its remaining count and when its day resets."""
    remaining = _header_int(headers, "x-rate-limit-remaining")
    reset = _header_int(headers, "x-rate-limit-reset")
    limit = _header_int(headers, "x-rate-limit-limit")
    if remaining is None and reset is None and limit is None:
        return
    org = organization(org)
    seen = slot or LimiterState.objects.filter(organization_id=org).first()
    if not _headers_change(seen, remaining, reset, limit, now):
        return  # the usual answer: our count already matches Zoho's, so no write
    with transaction.atomic():
        state = _locked_state(org, now)
        if reset is not None:
            resets_at = (now + timedelta(seconds=reset)).replace(microsecond=0)
            # Zoho's remaining only falls during its day (answers of calls in flight may arrive out
            # of order, by at most the calls in flight); a jump up means its day turned before ours.
            known = state.reported_remaining
            if remaining is not None and known is not None and remaining > known + concurrency_cap():
                state.day_resets_at = now
                _roll_day(state, now, resets_at=resets_at)
            state.day_resets_at = resets_at
        if limit is not None and limit > 0 and limit != state.reported_limit:
            if (
                state.reported_limit is not None
                and limit > state.reported_limit
                and state.reported_remaining is not None
            ):
                state.reported_remaining += limit - state.reported_limit  # a raised cap: the rise is spendable
            state.reported_limit = limit
        if remaining is not None and (state.reported_remaining is None or remaining < state.reported_remaining):
            # Within Zoho's day its remaining only falls; answers of calls in flight may arrive out of
            # order, so the lowest seen is the newest.
            state.reported_remaining = remaining
        state.save()


def _headers_change(
    seen: LimiterState | Slot | None, remaining: int | None, reset: int | None, limit: int | None, now: datetime
) -> bool:
    if seen is None or seen.day_resets_at is None or now >= seen.day_resets_at:
        return True
    if limit is not None and limit != seen.reported_limit:
        return True
    if remaining is not None and (seen.reported_remaining is None or remaining != seen.reported_remaining):
        return True
    # Zoho's reset is whole seconds from its own clock: a second of drift is not a new day end.
    return reset is not None and abs((now + timedelta(seconds=reset) - seen.day_resets_at).total_seconds()) > 2


def record_throttle(error: ZohoError, now: datetime, *, org: str | None = None) -> None:
    """Slow every process down after a 429, as Zoho asked."""
    with transaction.atomic():
        state = _locked_state(organization(org), now)
        if error.kind == ErrorKind.DAILY_LIMIT:
            state.day_blocked = True
        else:
            default = CONCURRENCY_PAUSE_SECONDS if error.kind == ErrorKind.CONCURRENCY else THROTTLE_PAUSE_SECONDS
            until = now + timedelta(seconds=error.retry_after if error.retry_after is not None else default)
            if state.paused_until is None or until > state.paused_until:
                state.paused_until = until
        state.save()


def usage(now: datetime, *, org: str | None = None) -> Usage:
    """The budget as every process sees it (dashboard, planner, tds_status). Reads only."""
    org = organization(org)
    state = LimiterState.objects.filter(organization_id=org).first() or LimiterState(organization_id=org)
    _roll_day(state, now)
    minute_used = min(MINUTE_CAP, _minute_calls(org, now).count())
    if state.paused_until and state.paused_until > now:
        minute_used = MINUTE_CAP  # Zoho has blocked us for now: no minute budget left
    return Usage(
        calls_today=state.calls_today,
        daily_cap=daily_cap(state),
        minute_used=minute_used,
        minute_cap=MINUTE_CAP,
        remaining_today=_remaining_today(state),
        remaining_minute=MINUTE_CAP - minute_used,
        reset_at=state.day_resets_at,
    )
