"""A first full pull says what it will cost before it starts: Zoho's lists have no total count, so
the survey finds each list's size with a few list calls, and the estimate of calls and duration it
prints is then held against what the pull really cost."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from sync import survey
from sync.models import SyncRun
from sync.zoho import limiter
from sync.zoho.client import ZohoClient

from .conftest import PAGE

pytestmark = pytest.mark.django_db(transaction=True)

ZOHO_ANSWERS_IN = 0.15  # seconds: Zoho answers a list or a detail call in a few hundred milliseconds


@pytest.mark.parametrize("records", [0, 7, PAGE, PAGE + 1, 3 * PAGE + 5, 5 * PAGE, 17 * PAGE + 3])
def test_the_survey_counts_a_list_within_its_ratio_in_a_few_calls(sim, records):
    sim.seed("customers", records)

    with ZohoClient() as client:
        count = survey.count_records(client, survey.entities.get("customers"))

    assert count.low <= records <= count.high, count
    assert count.high <= survey.RATIO * count.low or count.high - count.low < PAGE, count
    pages = max(1, math.ceil(records / PAGE))
    assert count.calls <= 2 * math.log2(pages) + 2, f"{count.calls} calls to count {pages} pages"
    assert len(sim.api_calls()) == count.calls


def test_a_first_full_pull_estimates_its_calls_and_duration_within_2x(sim, capsys, settings):
    for slug, n in {"products": 25, "customers": 45, "vendors": 5, "invoices": 12, "bills": 6}.items():
        sim.seed(slug, n)
    sim.slow_next(ZOHO_ANSWERS_IN, count=1000)  # Zoho's own answer time, not the loopback's

    started = time.monotonic()
    call_command("sync_zoho", "--entity", "all", "--mode", "full", "--first-pull")
    took = time.monotonic() - started

    out = capsys.readouterr().out
    said = re.search(
        r"Estimate \(counted with \d+ list calls\): about [\d,]+ records in Zoho, ([\d,]+) calls, (\d+) s", out
    )
    assert said, out
    estimated_calls, estimated_seconds = int(said[1].replace(",", "")), int(said[2])
    spent = sum(SyncRun.objects.values_list("calls", flat=True))
    assert spent / 2 <= estimated_calls <= spent * 2, f"estimated {estimated_calls} calls, spent {spent}\n{out}"
    # Seconds are printed whole: a pull of a few seconds is held to 2x give or take that rounding.
    assert took / 2 - 1 <= estimated_seconds <= took * 2 + 1, (
        f"estimated {estimated_seconds} s, took {took:.1f} s\n{out}"
    )
    # Each run planned from the survey, not from the one page a never-scanned entity would assume.
    invoices = SyncRun.objects.get(entity="invoices")
    assert invoices.estimated_calls >= 12, invoices.estimated_calls


def usage(*, calls_today: int = 0, daily_cap: int = 1000) -> limiter.Usage:
    return limiter.Usage(
        calls_today=calls_today,
        daily_cap=daily_cap,
        minute_used=0,
        minute_cap=limiter.MINUTE_CAP,
        remaining_today=daily_cap - calls_today,
        remaining_minute=limiter.MINUTE_CAP,
        reset_at=datetime(2026, 12, 8, tzinfo=UTC),
    )


def plan_of(calls: int, seconds_per_call: float) -> survey.Plan:
    return survey.Plan(
        calls={"invoices": survey.budget.Estimate(calls, 0)},
        survey_calls=10,
        survey_seconds=10 * seconds_per_call,
    )


def test_the_duration_keeps_to_the_minute_allowance_and_the_days_budget():
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)

    # 90 calls a minute (the cap less its 10 % reserve): 200 quick calls span two full minutes.
    assert plan_of(200, 0.1).duration(usage()) == timedelta(seconds=2 * 60 + 20 * 0.1)
    # Slow calls, not the allowance, set the pace.
    assert plan_of(200, 1.0).duration(usage()) == timedelta(seconds=200)
    # 2,500 calls on a 1,000-a-day plan (900 after the reserve) with 300 spent today: 600 today,
    # 900 on each of the next two days, the last 100 on the third.
    finish = plan_of(2500, 0.1).finish_at(usage(calls_today=300), now)
    assert finish.date() == datetime(2026, 12, 10).date(), finish
