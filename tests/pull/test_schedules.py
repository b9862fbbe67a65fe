from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from sync import schedules
from sync.zoho.limiter import DAILY_CAPS

pytestmark = pytest.mark.django_db

# The organisation of issue 5: 2,000 items, 1,000 contacts, 5,000 documents (and a few extras).
FREE_PLAN_ORG = schedules.Organisation(
    records={
        "products": 2000,
        "customers": 800,
        "vendors": 200,
        "invoices": 2000,
        "bills": 1000,
        "sales-orders": 1000,
        "credit-notes": 500,
        "payments": 500,
        "stock": 200,
        "prices": 10,
        "users": 10,
    },
    daily_change=0.05,
)


def test_default_schedules_fit_the_free_plan_with_the_reserve_kept():
    cost = schedules.calls_per_day(FREE_PLAN_ORG)
    allowance = DAILY_CAPS["free"] * (1 - 0.1)

    assert sum(cost.values()) <= allowance, cost
    # Hourly incremental pulls of six entities: a list call each, and a detail per changed document
    # (rounded up per run, so at least the day's 5 % of 4,000 documents).
    assert cost["tds-pull-incremental"] >= 24 * 6 + 4000 * 0.05


def test_a_tighter_schedule_is_shown_not_to_fit(settings):
    from tdscore import config

    config.update("incremental_sync_interval_minutes", 5)

    assert sum(schedules.calls_per_day(FREE_PLAN_ORG).values()) > DAILY_CAPS["free"] * 0.9


def test_setup_schedules_twice_gives_the_same_schedules(capsys):
    call_command("setup_schedules")
    first = {s.name: (s.pk, s.func, s.schedule_type, s.minutes, s.cron) for s in Schedule.objects.all()}
    call_command("setup_schedules")
    second = {s.name: (s.pk, s.func, s.schedule_type, s.minutes, s.cron) for s in Schedule.objects.all()}

    assert first == second
    assert set(first) == {
        "tds-drainer-watchdog",
        "tds-pull-incremental",
        "tds-pull-stock",
        "tds-pull-full",
        "tds-reconcile",
        "tds-check-alerts",
    }
    assert first["tds-drainer-watchdog"][1:4] == ("sync.tasks.ensure_drainers", Schedule.MINUTES, 1)
    assert first["tds-reconcile"][4] == "0 2 * * *"
    assert "updated tds-reconcile" in capsys.readouterr().out


def test_setup_schedules_follows_changed_configuration():
    from tdscore import config

    schedules.install(timezone.now())
    config.update("stock_sync_interval_minutes", 120)
    schedules.install(timezone.now())

    assert Schedule.objects.get(name="tds-pull-stock").minutes == 120
    assert Schedule.objects.filter(name="tds-pull-stock").count() == 1


def test_cron_schedules_first_run_at_their_next_cron_time():
    schedules.install(timezone.now())

    nightly = Schedule.objects.get(name="tds-reconcile").next_run
    assert (nightly.hour, nightly.minute) == (2, 0)
