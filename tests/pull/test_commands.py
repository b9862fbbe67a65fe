from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from erp.models import Product
from sync import pull, run_lifecycle, tasks
from sync.config_keys import RECONCILIATION_ENABLED
from sync.management.commands import sync_zoho
from sync.models import SyncRun

from .conftest import drain

pytestmark = pytest.mark.django_db(transaction=True)


def test_sync_zoho_pulls_with_progress_and_exits_0(sim, capsys):
    sim.seed("products", 45)

    call_command("sync_zoho", "--entity", "products", "--mode", "full")
    drain()

    out = capsys.readouterr().out
    assert "page 3 · fetched 45 · queued 45" in out
    assert "products: completed" in out
    assert Product.objects.count() == 45


def test_sync_zoho_exits_1_when_a_run_is_refused(sim, capsys):
    pull.start_run("products", "full", now=timezone.now(), trigger="schedule")

    with pytest.raises(SystemExit) as exit_:
        call_command("sync_zoho", "--entity", "products", "--mode", "full")

    assert exit_.value.code == 1
    assert "refused: overlap" in capsys.readouterr().err


def test_a_first_pull_skips_what_was_pulled(sim, capsys):
    sim.seed("products", 3)
    call_command("sync_zoho", "--entity", "products", "--mode", "full")

    call_command("sync_zoho", "--entity", "products", "--mode", "full", "--first-pull")

    assert "Every entity has had a full pull already: nothing to do." in capsys.readouterr().out
    assert SyncRun.objects.filter(entity="products").count() == 1


def test_a_first_pull_waits_for_a_running_run_of_the_entity_to_end(sim):
    sim.seed("vendors", 2)
    busy = pull.start_run("vendors", "full", now=timezone.now(), trigger="schedule")
    SyncRun.objects.filter(pk=busy.pk).update(status=SyncRun.Status.RUNNING)  # claimed: it reads Zoho now
    out = io.StringIO()
    command = sync_zoho.Command(stdout=out)
    waits = []

    def sleep(seconds):  # the scheduled run ends while the first pull waits for its turn
        waits.append(seconds)
        busy.refresh_from_db()
        run_lifecycle.finish(busy, SyncRun.Status.COMPLETED, now=timezone.now())

    assert command.pull_all(["vendors"], "full", stop={"asked": False}, wait_overlap=True, sleep=sleep)

    assert "vendors: waiting for its turn (overlap: full run" in out.getvalue()
    assert SyncRun.objects.filter(entity="vendors", status=SyncRun.Status.COMPLETED).count() == 2
    assert len(waits) == 1


def test_a_scheduled_run_only_waiting_for_zoho_gives_way_to_the_first_pull(sim):
    sim.seed("vendors", 2)
    waiting = pull.start_run("vendors", "incremental", now=timezone.now(), trigger="schedule")
    out = io.StringIO()

    assert sync_zoho.Command(stdout=out).pull_all(["vendors"], "full", stop={"asked": False}, wait_overlap=True)

    waiting.refresh_from_db()
    assert (waiting.status, waiting.error) == (SyncRun.Status.DEFERRED, "gave way to the first pull")
    assert "waiting for its turn" not in out.getvalue()
    assert SyncRun.objects.get(entity="vendors", run_type="full").status == SyncRun.Status.COMPLETED


def test_sync_zoho_all_incremental_runs_the_entities_zoho_can_filter_or_sort(sim):
    call_command("sync_zoho", "--entity", "all", "--mode", "incremental")

    assert set(SyncRun.objects.values_list("entity", flat=True)) == {
        "products",
        "customers",
        "vendors",
        "invoices",
        "bills",
        "sales-orders",
    }


def test_scheduled_pull_starts_runs_and_hands_them_to_the_cluster(sim):
    from django_q.models import OrmQ

    run_ids = tasks.scheduled_pull("stock")

    assert SyncRun.objects.get(pk__in=run_ids).run_type == SyncRun.RunType.STOCK
    assert OrmQ.objects.count() == 1


def test_scheduled_reconcile_is_off_when_disabled(sim):
    from tdscore import config

    config.update(RECONCILIATION_ENABLED, False)

    assert tasks.scheduled_reconcile() == []
    assert not SyncRun.objects.exists()


def test_tds_status_json_shows_the_budget_and_latest_runs(sim, capsys):
    sim.seed("products", 2)
    pull.pull_entity("products", "full", now=timezone.now())

    call_command("tds_status", "--json")

    data = json.loads(capsys.readouterr().out)
    assert data["zoho_budget"]["calls_today"] == 1
    assert data["zoho_budget"]["daily_cap"] == 10000
    assert data["runs"]["products"]["status"] == "completed"


def test_tds_status_prints_calls_used_of_the_cap(sim, capsys):
    call_command("tds_status")

    assert "Zoho calls today: 0 of 10,000" in capsys.readouterr().out
