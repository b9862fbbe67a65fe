"""Freshness where an operator looks: how far the ERP trails Zoho's change and the webhook, per entity,
in the API, /metrics and tds_status, with old records a pull brings kept apart from lag.

Percentiles are read from histograms (as Prometheus reads them), so each is checked against the
bucket the known timestamps put it in.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command

from alerts import rules
from alerts.config_keys import FRESHNESS_THRESHOLD_MINUTES
from monitoring import rollups, stats
from sync.models import QueueItem, SyncRun
from tdscore import config
from tests import factories

from .conftest import finished_row
from .test_prometheus import scrape

pytestmark = pytest.mark.django_db

YEAR = timedelta(days=365)


def pulled_row(entity: str, object_id: str, *, run: SyncRun, version, queued, finished) -> QueueItem:
    """A pulled record's queue row, queued at `queued` and applied at `finished`."""
    item = factories.queue_item(entity, object_id, now=queued, version=version, source=QueueItem.Source.PULL)
    QueueItem.objects.filter(pk=item.pk).update(
        status=QueueItem.Status.COMPLETED, finished_at=finished, updated_at=finished, sync_run=run
    )
    return item


def webhooks(now, entity: str, lags: list[tuple[float, float]]) -> None:
    """Applied webhook rows, one per (seconds after Zoho's change, seconds after receipt), committed now."""
    for n, (since_modified, since_received) in enumerate(lags):
        commit = now - timedelta(seconds=30)
        finished_row(
            entity,
            f"{entity}-{n}",
            received=commit - timedelta(seconds=since_received),
            finished=commit,
            version=commit - timedelta(seconds=since_modified),
        )


def first_full_pull(now, *, old_records: int = 30) -> SyncRun:
    """A new installation's first full pull, still running: last year's invoices, applied just now."""
    run = factories.sync_run(
        "invoices",
        run_type=SyncRun.RunType.FULL,
        status=SyncRun.Status.RUNNING,
        started_at=now - timedelta(minutes=20),
        finished_at=None,
    )
    for n in range(old_records):
        pulled_row(
            "invoices",
            f"old-{n}",
            run=run,
            version=now - YEAR + timedelta(days=n),
            queued=now - timedelta(minutes=15),
            finished=now - timedelta(minutes=5),
        )
    return run


def test_p50_and_p95_per_entity_after_zoho_and_after_the_webhook(now):
    # products: 18 changes 4 s after Zoho (1 s after the webhook), 2 slow ones at 100 s (50 s).
    webhooks(now, "products", [(4, 1)] * 18 + [(100, 50)] * 2)
    webhooks(now, "invoices", [(20, 0.04)] * 10)

    found = stats.freshness_by_entity(now)

    products, invoices = found["products"], found["invoices"]
    assert products["since_modified"]["count"] == 20
    assert 2 <= products["since_modified"]["p50_seconds"] <= 5
    assert 60 <= products["since_modified"]["p95_seconds"] <= 120
    assert 0.5 <= products["since_received"]["p50_seconds"] <= 1
    assert 30 <= products["since_received"]["p95_seconds"] <= 60
    assert 10 <= invoices["since_modified"]["p95_seconds"] <= 30
    assert 0.025 <= invoices["since_received"]["p95_seconds"] <= 0.05
    assert "backfill" not in products


def test_a_first_full_pull_of_last_years_records_is_backfill_not_lag(now):
    run = first_full_pull(now)
    # Modified in Zoho while the pull ran: a live change, however it came.
    pulled_row(
        "invoices",
        "live",
        run=run,
        version=now - timedelta(minutes=19),
        queued=now - timedelta(minutes=15),
        finished=now - timedelta(minutes=5),
    )
    webhooks(now, "invoices", [(3, 0.5)] * 5)

    invoices = stats.freshness_by_entity(now)["invoices"]

    assert invoices["backfill"]["count"] == 30
    assert invoices["backfill"]["p50_seconds"] > 30 * 86400  # last year's records: history
    assert invoices["since_modified"]["count"] == 6  # the webhooks and the one live pulled change
    assert invoices["since_modified"]["p95_seconds"] <= 1800  # not "a year stale"
    assert invoices["since_received"]["count"] == 5


def test_after_a_complete_pull_a_change_webhooks_missed_is_lag_and_a_reread_record_is_not(now):
    factories.sync_run(
        "products",
        run_type=SyncRun.RunType.INCREMENTAL,
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=2) + timedelta(minutes=1),
    )
    run = factories.sync_run(
        "products", run_type=SyncRun.RunType.INCREMENTAL, started_at=now - timedelta(minutes=10), finished_at=None
    )
    # Changed after the last complete pull began, and only this pull found it: an hour late.
    pulled_row(
        "products",
        "missed",
        run=run,
        version=now - timedelta(minutes=65),
        queued=now - timedelta(minutes=9),
        finished=now - timedelta(minutes=5),
    )
    # Changed before the last complete pull began (read again by the overlap): history.
    pulled_row(
        "products",
        "reread",
        run=run,
        version=now - timedelta(hours=3),
        queued=now - timedelta(minutes=9),
        finished=now - timedelta(minutes=5),
    )

    products = stats.freshness_by_entity(now)["products"]

    assert products["since_modified"]["count"] == 1
    assert 1800 <= products["since_modified"]["p95_seconds"] <= 3600
    assert products["backfill"]["count"] == 1
    assert "since_received" not in products


def test_the_dashboard_api_shows_freshness_beside_the_latency(api_client, now):
    webhooks(now, "products", [(4, 1)] * 10)
    first_full_pull(now, old_records=3)

    body = api_client.get("/api/dashboard/metrics").json()

    assert body["last_hour"]["latency_p95_seconds"] is not None
    products, invoices = body["freshness"]["products"], body["freshness"]["invoices"]
    assert 2 <= products["since_modified"]["p95_seconds"] <= 5
    assert 0.5 <= products["since_received"]["p50_seconds"] <= 1
    assert invoices == {"backfill": invoices["backfill"]} and invoices["backfill"]["count"] == 3


def test_metrics_exposes_freshness_histograms_per_entity_and_lag(now):
    minute = rollups.minute_of(now) - timedelta(minutes=1)
    finished_row(
        "products",
        "1",
        received=minute,
        finished=minute + timedelta(seconds=0.03),
        version=minute - timedelta(seconds=3),
    )
    run = factories.sync_run(
        "invoices", run_type=SyncRun.RunType.FULL, started_at=minute - timedelta(hours=1), finished_at=None
    )
    pulled_row("invoices", "old", run=run, version=minute - YEAR, queued=minute, finished=minute + timedelta(seconds=1))
    rollups.rollup(now)

    samples = scrape()

    def sample(suffix: str, entity: str, lag: str, le: str | None = None) -> float:
        labels = {"entity": entity, "lag": lag, **({"le": le} if le else {})}
        return samples[(f"tds_freshness_seconds_{suffix}", tuple(sorted(labels.items())))]

    assert sample("bucket", "products", "since_modified", "2.0") == 0
    assert sample("bucket", "products", "since_modified", "5.0") == 1
    assert sample("bucket", "products", "since_received", "0.025") == 0
    assert sample("bucket", "products", "since_received", "0.05") == 1
    assert sample("sum", "products", "since_received") == pytest.approx(0.03)
    assert sample("count", "invoices", "backfill") == 1
    assert sample("bucket", "invoices", "backfill", "2.592e+06") == 0  # older than 30 days
    assert ("tds_freshness_seconds_count", (("entity", "invoices"), ("lag", "since_modified"))) not in samples


def test_tds_status_shows_freshness_per_entity(now, capsys):
    webhooks(now, "products", [(4, 1)] * 10)
    first_full_pull(now, old_records=2)

    call_command("tds_status", "--json")
    found = json.loads(capsys.readouterr().out)["freshness"]
    call_command("tds_status")
    text = capsys.readouterr().out

    assert 2 <= found["products"]["since_modified"]["p95_seconds"] <= 5
    assert found["invoices"]["backfill"]["count"] == 2
    line = next(line for line in text.splitlines() if line.strip().startswith("products"))
    assert "after Zoho's change" in line and "after the webhook" in line
    assert "old records pulled (not lag)" in next(line for line in text.splitlines() if "invoices " in line)


def test_a_fresh_install_whose_data_arrived_in_time_opens_no_freshness_alert(now):
    config.update(FRESHNESS_THRESHOLD_MINUTES, 15)
    first_full_pull(now)
    for n in range(30):  # the audit rows the pull's apply wrote, as it writes them
        factories.audit_row(
            "invoices", f"old-{n}", at=now - timedelta(minutes=5), version=now - YEAR, source=QueueItem.Source.PULL
        )
    webhooks(now, "products", [(4, 1)] * 5)
    for n in range(5):
        factories.audit_row("products", f"products-{n}", at=now - timedelta(seconds=30), version=now, source="webhook")

    assert rules.RULES["freshness"](now) == []
