"""The shared rate limiter, driven with explicit times (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.zoho import limiter
from sync.zoho.errors import ZohoError
from sync.zoho.limiter import Slot
from sync.zoho.models import CallOutcome, LimiterState

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
ORG = "60012345"


@pytest.fixture(autouse=True)
def _org(settings, time_machine):
    # Code that reads the clock itself (acquire's wait, pruning) must agree with the explicit NOW.
    time_machine.move_to(NOW, tick=False)
    settings.ZOHO_ORGANIZATION_ID = ORG
    settings.ZOHO_PLAN = "free"
    settings.TIME_ZONE = "UTC"


def take(n: int, now: datetime = NOW) -> list[Slot]:
    slots = []
    for _ in range(n):
        slot = limiter.try_acquire(now)
        assert isinstance(slot, Slot), f"refused after {len(slots)} calls"
        limiter.release(slot, now, outcome=CallOutcome.OK, status=200)
        slots.append(slot)
    return slots


def test_the_101st_call_of_a_minute_waits_until_the_first_leaves_the_window():
    take(100, NOW)
    wait = limiter.try_acquire(NOW + timedelta(seconds=30))
    assert wait == pytest.approx(30.5)  # 60 s after the first, plus the guard
    assert isinstance(limiter.try_acquire(NOW + timedelta(seconds=60.6)), Slot)


def test_the_day_is_refused_once_the_plan_cap_is_spent(settings):
    settings.ZOHO_PLAN = "free"
    LimiterState.objects.create(organization_id=ORG, calls_today=998, day_resets_at=NOW + timedelta(hours=18))
    take(2, NOW)
    with pytest.raises(ZohoError) as caught:
        limiter.try_acquire(NOW + timedelta(minutes=1))
    assert caught.value.kind == "budget" and not caught.value.permanent
    assert limiter.usage(NOW + timedelta(minutes=1)).remaining_today == 0


def test_the_day_count_starts_again_after_midnight():
    take(5, NOW)
    assert limiter.usage(NOW).calls_today == 5
    tomorrow = NOW + timedelta(days=1)
    assert limiter.usage(tomorrow).calls_today == 0
    take(1, tomorrow)
    assert limiter.usage(tomorrow).calls_today == 1


def test_usage_reports_minute_and_day(settings):
    settings.ZOHO_PLAN = "standard"
    take(30, NOW)
    usage = limiter.usage(NOW + timedelta(seconds=10))
    assert (usage.calls_today, usage.daily_cap, usage.remaining_today) == (30, 2000, 1970)
    assert (usage.minute_used, usage.minute_cap, usage.remaining_minute) == (30, 100, 70)
    assert usage.reset_at == datetime(2026, 11, 24, tzinfo=UTC)
    later = limiter.usage(NOW + timedelta(seconds=61))
    assert (later.minute_used, later.calls_today) == (0, 30)


def test_zoho_remaining_header_wins_when_lower():
    take(1, NOW)
    limiter.record_headers({"x-rate-limit-remaining": "3", "x-rate-limit-reset": "64800"}, NOW)
    assert limiter.usage(NOW).remaining_today == 3
    take(3, NOW)
    with pytest.raises(ZohoError) as caught:
        limiter.try_acquire(NOW)
    assert caught.value.kind == "budget"


def test_zoho_reset_header_sets_the_end_of_the_day():
    take(2, NOW)
    limiter.record_headers({"x-rate-limit-remaining": "900", "x-rate-limit-reset": "3600"}, NOW)
    assert limiter.usage(NOW).reset_at == NOW + timedelta(hours=1)
    assert limiter.usage(NOW + timedelta(hours=1, seconds=1)).calls_today == 0


def test_a_per_minute_429_pauses_every_caller_for_retry_after():
    limiter.record_throttle(ZohoError("429", kind="rate_limit", status=429, code=44, retry_after=20), NOW)
    assert limiter.try_acquire(NOW + timedelta(seconds=5)) == pytest.approx(15)
    assert limiter.usage(NOW + timedelta(seconds=5)).remaining_minute == 0
    assert isinstance(limiter.try_acquire(NOW + timedelta(seconds=20)), Slot)


def test_a_daily_429_refuses_until_the_day_resets():
    limiter.record_headers({"x-rate-limit-reset": "7200"}, NOW)
    limiter.record_throttle(ZohoError("429", kind="daily_limit", status=429, code=45), NOW)
    with pytest.raises(ZohoError) as caught:
        limiter.try_acquire(NOW + timedelta(minutes=5))
    assert caught.value.kind == "daily_limit"
    assert caught.value.retry_after == pytest.approx(7200 - 300)
    assert isinstance(limiter.try_acquire(NOW + timedelta(hours=2, seconds=1)), Slot)


def test_concurrency_cap_holds_calls_in_flight(settings):
    settings.ZOHO_PLAN = "free"
    held = [limiter.try_acquire(NOW, lease_seconds=30) for _ in range(5)]
    assert all(isinstance(slot, Slot) for slot in held)
    assert limiter.try_acquire(NOW) == limiter.CONCURRENCY_POLL_SECONDS
    limiter.release(held[0], NOW, outcome=CallOutcome.OK)
    assert isinstance(limiter.try_acquire(NOW), Slot)


def test_a_crashed_callers_slot_frees_when_its_lease_ends():
    for _ in range(5):
        limiter.try_acquire(NOW, lease_seconds=30)
    assert limiter.try_acquire(NOW + timedelta(seconds=29)) == limiter.CONCURRENCY_POLL_SECONDS
    assert isinstance(limiter.try_acquire(NOW + timedelta(seconds=31)), Slot)


def test_acquire_gives_up_after_its_bounded_wait():
    take(100, NOW)
    waits: list[float] = []
    with pytest.raises(ZohoError) as caught:
        limiter.acquire(sleep=waits.append, max_wait=5)
    assert caught.value.kind == "rate_limit" and not caught.value.permanent
    assert waits == []  # it did not sleep for a slot it could not get in time


def test_zoho_day_turning_before_ours_starts_a_new_count():
    take(1, NOW)
    limiter.record_headers({"x-rate-limit-remaining": "10", "x-rate-limit-reset": "60"}, NOW)
    take(10 - 1, NOW)
    # Zoho's day ended earlier than ours would have; its count starts again.
    later = NOW + timedelta(seconds=30)
    limiter.record_headers({"x-rate-limit-remaining": "999", "x-rate-limit-reset": "86370"}, later)
    usage = limiter.usage(later)
    assert (usage.calls_today, usage.remaining_today) == (0, 999)
