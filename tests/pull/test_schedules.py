from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from sync import pull, run_lifecycle, schedules, tasks
from sync.config_keys import INCREMENTAL_SYNC_INTERVAL_MINUTES, STOCK_SYNC_INTERVAL_MINUTES
from sync.models import SyncRun
from sync.zoho.limiter import DAILY_CAPS

pytestmark = pytest.mark.django_db

# A mid-sized organisation: 2,000 items, 1,000 contacts, 5,000 documents (and a few extras).
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


def record_sizes(org: schedules.Organisation) -> None:
    """What full scans (and a stock run) of this organisation leave on the cursors."""
    for slug, records in org.records.items():
        cursor = run_lifecycle.cursor(slug, SyncRun.RunType.FULL)
        cursor.checkpoint = {"records": records}
        cursor.save()
    stock = run_lifecycle.cursor("stock", SyncRun.RunType.STOCK)
    stock.checkpoint = {"records": org.records["products"]}
    stock.save()


def test_default_schedules_fit_the_free_plan_with_the_reserve_kept():
    cost = schedules.calls_per_day(FREE_PLAN_ORG)
    allowance = DAILY_CAPS["free"] * (1 - 0.1)

    assert sum(cost.values()) <= allowance, cost
    # Only because they are stretched: the seeds' cadence (stock every 15 minutes) is far over.
    assert sum(schedules.calls_per_day(FREE_PLAN_ORG, schedules.wanted()).values()) > allowance
    # Incremental pulls of six entities: a list call each, and a detail per changed document
    # (rounded up per run, so at least the day's 5 % of 4,000 documents).
    incremental = next(s for s in schedules.plan(FREE_PLAN_ORG).schedules if s.name == "tds-pull-incremental")
    runs_a_day = 24 * 60 / incremental.minutes
    assert cost["tds-pull-incremental"] >= runs_a_day * 6 + 4000 * 0.05


def test_on_the_free_plan_the_costliest_schedules_are_stretched_and_say_why():
    fitted = schedules.plan(FREE_PLAN_ORG)

    assert fitted.fits
    lines = {s.name: s.line() for s in fitted.stretches}
    # Bulk item details made stock cheap enough that incremental pulls keep the seeds' hourly cadence.
    assert set(lines) == {"tds-pull-stock"}
    assert lines["tds-pull-stock"].startswith("stretched tds-pull-stock: every 15 min → every 1 h: ")
    assert "the free plan allows 900 after the reserve (1,000 a day less 100)" in lines["tds-pull-stock"]


def test_on_a_larger_plan_nothing_is_stretched(settings):
    settings.ZOHO_PLAN = "premium"

    fitted = schedules.plan(FREE_PLAN_ORG)

    assert fitted.stretches == [] and fitted.schedules == schedules.wanted()


def test_a_tighter_schedule_is_stretched_to_fit():
    from tdscore import config

    config.update(INCREMENTAL_SYNC_INTERVAL_MINUTES, 5)

    assert sum(schedules.calls_per_day(FREE_PLAN_ORG, schedules.wanted()).values()) > DAILY_CAPS["free"] * 0.9
    fitted = schedules.plan(FREE_PLAN_ORG)
    assert fitted.fits
    assert next(s for s in fitted.stretches if s.name == "tds-pull-incremental").wanted == "every 5 min"


def test_setup_schedules_reports_a_stretched_schedule(capsys):
    record_sizes(FREE_PLAN_ORG)

    call_command("setup_schedules")

    assert "stretched tds-pull-stock: every 15 min → every 1 h" in capsys.readouterr().out
    assert Schedule.objects.get(name="tds-pull-stock").minutes == 60


def test_schedules_are_reinstalled_when_a_schedule_key_changes():
    from tdscore import config

    schedules.install(timezone.now())
    config.update(STOCK_SYNC_INTERVAL_MINUTES, 30)

    assert tasks.ensure_schedules() == ["tds-pull-stock"]  # the every-minute watch task
    assert Schedule.objects.get(name="tds-pull-stock").minutes == 30
    assert tasks.ensure_schedules() == []


def test_schedules_are_stretched_when_the_organisation_turns_out_large():
    schedules.install(timezone.now())
    assert Schedule.objects.get(name="tds-pull-stock").minutes == 15  # nothing scanned yet: cheap

    record_sizes(FREE_PLAN_ORG)
    tasks.ensure_schedules()

    assert Schedule.objects.get(name="tds-pull-stock").minutes == 60


def test_stretches_are_shown_on_the_schedule_admin(client, staff_user):
    record_sizes(FREE_PLAN_ORG)
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)

    page = client.get("/admin/django_q/schedule/").content.decode()

    assert "tretched tds-pull-stock: every 15 min → every 1 h: as configured" in page  # capitalised there


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
        "tds-schedules-watch",
        "tds-heal",
        "tds-cleanup",
        "tds-check-alerts",
        "tds-metric-rollup",
    }
    assert first["tds-drainer-watchdog"][1:4] == ("sync.tasks.ensure_drainers", Schedule.MINUTES, 1)
    assert first["tds-reconcile"][4] == "0 2 * * *"
    assert first["tds-pull-full"][4] == "0 2 * * *"
    assert first["tds-heal"][1:4] == ("sync.tasks.heal_task", Schedule.MINUTES, 15)
    assert "updated tds-reconcile" in capsys.readouterr().out


def test_setup_schedules_follows_changed_configuration():
    from tdscore import config

    schedules.install(timezone.now())
    config.update(STOCK_SYNC_INTERVAL_MINUTES, 120)
    schedules.install(timezone.now())

    assert Schedule.objects.get(name="tds-pull-stock").minutes == 120
    assert Schedule.objects.filter(name="tds-pull-stock").count() == 1


def test_cron_schedules_first_run_at_their_next_cron_time():
    schedules.install(timezone.now())

    nightly = Schedule.objects.get(name="tds-reconcile").next_run
    assert (nightly.hour, nightly.minute) == (2, 0)


def test_a_reconciliation_refused_for_a_running_full_pull_tries_again_later():
    full = pull.start_run("products", "full", now=timezone.now(), trigger="schedule")

    tasks.scheduled_reconcile()

    retry = Schedule.objects.get(func="sync.tasks.scheduled_reconcile", schedule_type=Schedule.ONCE)
    assert retry.args == "(['products'], 1)"
    assert timedelta(minutes=14) < retry.next_run - timezone.now() <= timedelta(minutes=15)
    assert not SyncRun.objects.filter(entity="products", run_type=SyncRun.RunType.RECONCILIATION).exists()

    run_lifecycle.finish(full, SyncRun.Status.COMPLETED, now=timezone.now())
    tasks.scheduled_reconcile(["products"], 1)  # as django-q2 runs the retry

    assert SyncRun.objects.filter(entity="products", run_type=SyncRun.RunType.RECONCILIATION).count() == 1
    # Only the first retry (django-q2 deletes it once run): the second call had nothing to retry.
    assert Schedule.objects.filter(schedule_type=Schedule.ONCE).count() == 1
