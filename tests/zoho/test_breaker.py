"""The shared circuit breaker, driven with explicit times (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from monitoring.health import READINESS_CHECKS
from sync.zoho import breaker, limiter
from sync.zoho.config_keys import (
    ZOHO_AUTH_RETRY_SECONDS,
    ZOHO_BREAKER_CONSECUTIVE_FAILURES,
    ZOHO_BREAKER_COOLDOWN_SECONDS,
)
from sync.zoho.errors import ZohoError
from sync.zoho.models import CallOutcome
from tdscore import config
from tests import factories

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _org(settings, time_machine):
    # The state rows are created on first use at the clock's time: just before the explicit times below.
    time_machine.move_to(NOW - timedelta(minutes=1), tick=False)
    settings.ZOHO_ORGANIZATION_ID = "60012345"
    config.update(ZOHO_BREAKER_COOLDOWN_SECONDS, 5)


def call(outcome: CallOutcome, now: datetime) -> None:
    """A call as the client makes it: a limiter slot, then the outcome told to both."""
    slot = limiter.try_acquire(now)
    limiter.release(slot, now, outcome=outcome)
    if outcome == CallOutcome.FAILURE:
        breaker.record_failure("HTTP 500", now)
    else:
        breaker.record_success(now)


def refused(now: datetime) -> str | None:
    try:
        breaker.allow(now)
    except ZohoError as exc:
        return exc.kind
    return None


def test_consecutive_failures_open_the_breaker():
    for _ in range(4):
        call(CallOutcome.FAILURE, NOW)
    assert breaker.state(NOW) == "closed"
    call(CallOutcome.FAILURE, NOW)
    assert breaker.state(NOW) == "open"
    assert refused(NOW + timedelta(seconds=1)) == "breaker_open"


def test_a_high_failure_rate_over_the_window_opens_it():
    config.update(ZOHO_BREAKER_CONSECUTIVE_FAILURES, 100)
    for i in range(10):
        call(CallOutcome.FAILURE if i % 2 else CallOutcome.OK, NOW + timedelta(seconds=i))
    assert breaker.state(NOW + timedelta(seconds=10)) == "open"


def test_a_low_failure_rate_keeps_it_closed():
    config.update(ZOHO_BREAKER_CONSECUTIVE_FAILURES, 100)
    for i in range(20):
        call(CallOutcome.FAILURE if i % 3 == 0 else CallOutcome.OK, NOW + timedelta(seconds=i))
    assert breaker.state(NOW + timedelta(seconds=20)) == "closed"


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes():
    for _ in range(5):
        call(CallOutcome.FAILURE, NOW)
    later = NOW + timedelta(seconds=6)
    assert breaker.state(later) == "half_open"
    assert refused(later) is None  # the probe
    assert refused(later) == "breaker_open"  # everyone else waits for it
    call(CallOutcome.OK, later)
    assert breaker.state(later) == "closed"
    assert refused(later) is None


def test_a_failed_probe_opens_it_again():
    for _ in range(5):
        call(CallOutcome.FAILURE, NOW)
    later = NOW + timedelta(seconds=6)
    assert refused(later) is None
    call(CallOutcome.FAILURE, later)
    assert breaker.state(later + timedelta(seconds=1)) == "open"
    assert refused(later + timedelta(seconds=4)) == "breaker_open"
    assert breaker.state(later + timedelta(seconds=6)) == "half_open"


def test_auth_state_refuses_everyone_until_the_retry_time_then_lets_one_through():
    config.update(ZOHO_AUTH_RETRY_SECONDS, 30)
    breaker.enter_auth("refresh refused: invalid_code", NOW)
    assert breaker.state(NOW) == "auth"
    assert refused(NOW + timedelta(seconds=10)) == "auth"
    assert refused(NOW + timedelta(seconds=31)) is None
    assert refused(NOW + timedelta(seconds=32)) == "auth"
    breaker.clear_auth(NOW + timedelta(seconds=33))
    assert breaker.state(NOW + timedelta(seconds=33)) == "closed"


def test_an_operator_reset_closes_it_and_lifts_auth():
    for _ in range(5):
        call(CallOutcome.FAILURE, NOW)
    breaker.enter_auth("401 after refresh", NOW)
    breaker.reset(NOW, actor=factories.actor("operator"))
    assert breaker.state(NOW) == "closed"
    assert refused(NOW) is None


def test_readiness_is_degraded_while_open_or_in_auth():
    check = READINESS_CHECKS["zoho"]
    assert check(NOW)[0] == "ok"
    for _ in range(5):
        call(CallOutcome.FAILURE, NOW)
    status, detail = check(NOW)
    assert status == "degraded" and "open" in detail
    breaker.enter_auth("invalid_code", NOW)
    status, detail = check(NOW)
    assert status == "degraded" and "credentials" in detail


def test_ready_endpoint_reports_the_open_breaker_without_failing(client):
    for _ in range(5):
        call(CallOutcome.FAILURE, timezone.now())
    answer = client.get("/health/ready")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "degraded" and body["checks"]["zoho"]["status"] == "degraded"
