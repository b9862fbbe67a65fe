from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from sync import budget, entities, pull
from sync.models import SyncCursor, SyncRun
from sync.zoho.limiter import Usage
from sync.zoho.models import LimiterState

from .conftest import PAGE

pytestmark = pytest.mark.django_db(transaction=True)


def spend(sim, calls: int) -> None:
    """Today's count as the shared limiter keeps it, as if other runs had made these calls."""
    now = timezone.now()
    LimiterState.objects.update_or_create(
        organization_id=sim.organization_id,
        defaults={"calls_today": calls, "day_resets_at": now + timedelta(hours=6)},
    )


def usage(calls_today: int, *, cap: int = 1000, minute_used: int = 0, reset_at: datetime | None = None) -> Usage:
    return Usage(
        calls_today=calls_today,
        daily_cap=cap,
        minute_used=minute_used,
        minute_cap=100,
        remaining_today=cap - calls_today,
        remaining_minute=100 - minute_used,
        reset_at=reset_at or datetime(2026, 6, 2, tzinfo=UTC),
    )


def test_a_run_is_planned_as_list_pages_plus_details_of_changed_documents():
    invoices = entities.get("invoices")

    assert budget.estimate(invoices, "full", records=5000, changed=40) == budget.Estimate(25, 40)
    assert budget.estimate(invoices, "incremental", records=5000, changed=40) == budget.Estimate(1, 40)
    assert budget.estimate(entities.get("products"), "full", records=2000, changed=40) == budget.Estimate(10, 0)
    assert budget.estimate(invoices, "reconciliation", records=5000, changed=40) == budget.Estimate(25, 0)


def test_a_run_that_fits_runs():
    decision = budget.decide(budget.Estimate(5, 500), usage(300))

    assert decision.action == budget.Action.RUN


def test_a_run_that_does_not_fit_today_is_deferred_until_the_reset():
    decision = budget.decide(budget.Estimate(30, 0), usage(880))

    assert decision.action == budget.Action.DEFER
    assert "20 left today above the reserve of 100" in decision.reason


def test_a_run_bigger_than_a_whole_day_is_refused():
    decision = budget.decide(budget.Estimate(950, 0), usage(0))

    assert decision.action == budget.Action.REFUSE
    assert "whole day's allowance of 900" in decision.reason


def test_projected_exhaustion_follows_the_plans_pace():
    reset = datetime(2026, 6, 2, tzinfo=UTC)
    noon = reset - timedelta(hours=12)

    # The schedules spend 1,200 calls a day, 50 an hour: the remaining 400 last 8 hours.
    assert budget.projected_exhaustion(usage(600, reset_at=reset), noon, 1200) == noon + timedelta(hours=8)
    assert budget.projected_exhaustion(usage(100, reset_at=reset), noon, 1200) is None
    assert budget.projected_exhaustion(usage(600, reset_at=reset), noon, 0) is None


def test_a_heavy_first_pull_at_minute_two_is_not_the_days_pace(sim, settings, client):
    """167 calls in the first two minutes of an install: the default schedules spend a few hundred
    a day, so the 833 left last the day, and readiness stays ok."""
    settings.ZOHO_PLAN = "free"
    now = timezone.now()
    LimiterState.objects.update_or_create(
        organization_id=sim.organization_id,
        defaults={"calls_today": 167, "day_resets_at": now + timedelta(hours=23, minutes=58)},
    )

    check = client.get("/health/ready").json()["checks"]["zoho_budget"]

    assert check == {"status": "ok", "detail": "167 of 1,000 calls used today"}


def test_a_run_that_would_break_the_daily_budget_is_deferred(sim, settings, run_pull):
    settings.ZOHO_PLAN = "free"
    sim.seed("products", 5)
    spend(sim, 950)

    run = run_pull("products", "full")

    assert run.status == SyncRun.Status.DEFERRED
    assert "daily budget" in run.error
    assert sim.api_calls() == []


def test_a_run_that_spends_the_day_midway_is_deferred_and_resumes_later(sim, settings, run_pull):
    settings.ZOHO_PLAN = "free"
    sim.seed("products", PAGE * 5)
    spend(sim, 897)  # three calls left above the reserve of 100

    first = run_pull("products", "full")

    assert first.status == SyncRun.Status.DEFERRED
    assert first.fetched == PAGE * 3
    spend(sim, 0)  # the day turned
    second = run_pull("products", "full")
    assert second.status == SyncRun.Status.COMPLETED
    assert first.fetched + second.fetched == PAGE * 5  # resumed at its next page


def test_details_are_fetched_as_far_as_the_budget_allows(sim, settings, run_pull):
    settings.ZOHO_PLAN = "free"
    sim.seed("invoices", PAGE)
    spend(sim, 890)  # ten calls left above the reserve: one list page and nine details

    run = run_pull("invoices", "full")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    assert run.calls == 10
    assert run.queue_items.filter(is_summary=False).count() == 9
    assert run.queue_items.filter(is_summary=True).count() == PAGE - 9
    assert SyncCursor.objects.get(entity="invoices", run_type="full").checkpoint["details_left"] == PAGE - 9


def test_a_scan_bigger_than_a_day_is_refused_with_the_reason(sim, settings):
    settings.ZOHO_PLAN = "free"
    SyncCursor.objects.create(entity="products", run_type="full", checkpoint={"records": PAGE * 950})

    with pytest.raises(pull.run_lifecycle.RunRefused, match="budget: needs about 950 list calls"):
        pull.start_run("products", "full", now=timezone.now(), trigger="manual")
    assert not SyncRun.objects.exists()


def test_the_run_keeps_the_minute_reserve(sim, settings, run_pull):
    settings.TDS_PULL_PAGE_SIZE = 1
    sim.seed("products", 95)

    run = run_pull("products", "full")

    assert run.status == SyncRun.Status.COMPLETED
    calls = [r.at for r in sim.api_calls()]
    busiest = max(sum(1 for t in calls if start <= t < start + timedelta(seconds=60)) for start in calls)
    assert busiest <= 90


def test_status_shows_calls_used_the_cap_and_the_exhaustion_time(sim, settings):
    settings.ZOHO_PLAN = "free"
    spend(sim, 400)

    status = budget.status(timezone.now())

    assert (status.calls_today, status.daily_cap, status.reserve) == (400, 1000, 100)
    assert status.as_dict()["remaining_today"] == 600


def test_readiness_is_degraded_when_only_the_reserve_is_left(sim, settings, client):
    settings.ZOHO_PLAN = "free"
    assert client.get("/health/ready").json()["checks"]["zoho_budget"]["status"] == "ok"
    spend(sim, 950)

    check = client.get("/health/ready").json()["checks"]["zoho_budget"]

    assert check["status"] == "degraded"
    assert "950 of 1,000 calls used today: only the reserve is left" in check["detail"]
