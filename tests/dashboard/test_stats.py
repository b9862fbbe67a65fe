from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.models import Alert
from monitoring import rollups, stats
from sync.models import QueueItem
from tdscore.models import Metric
from tests import factories

from .conftest import dead_lettered, finished_row

pytestmark = pytest.mark.django_db


def test_overview_counts_the_last_hour_and_day(now):
    finished_row(
        "products",
        "1",
        received=now - timedelta(minutes=10),
        finished=now - timedelta(minutes=10) + timedelta(seconds=3),
    )
    finished_row("invoices", "2", received=now - timedelta(hours=5), finished=now - timedelta(hours=5))
    dead_lettered("products", "3", at=now - timedelta(minutes=30))

    view = stats.overview(now)

    assert view["last_hour"]["received"] == 2
    assert view["last_hour"]["applied"] == 1
    assert view["last_hour"]["failed"] == 1
    assert view["last_hour"]["success_rate"] == 0.5
    assert view["last_day"]["received"] == 3
    assert view["last_day"]["applied"] == 2
    assert view["dlq_size"] == 1


def test_overview_reads_rolled_up_minutes_and_the_live_edge_alike(now):
    # Two rows in a minute that gets rolled up, one after it: the figure is the same either way.
    for object_id in ("1", "2"):
        finished_row(received=now - timedelta(minutes=5), finished=now - timedelta(minutes=5), object_id=object_id)
    before = stats.overview(now)["last_hour"]
    rollups.rollup_minute(rollups.minute_of(now - timedelta(minutes=5)))
    Metric.objects.filter(name=rollups.Series.ROLLED_UP).update(at=rollups.minute_of(now - timedelta(minutes=1)))
    finished_row(received=now - timedelta(seconds=10), finished=now - timedelta(seconds=5), object_id="3")

    after = stats.overview(now)["last_hour"]

    assert before["applied"] == 2
    assert after["applied"] == 3


def test_latency_percentiles_come_from_arrival_to_commit(now):
    for i in range(100):
        received = now - timedelta(minutes=20)
        finished_row(object_id=str(i), received=received, finished=received + timedelta(seconds=1.5 if i < 90 else 50))

    hour = stats.overview(now)["last_hour"]

    assert 1 <= hour["latency_p50_seconds"] <= 2
    assert 30 <= hour["latency_p99_seconds"] <= 60


def test_queue_depth_and_oldest_pending_age(now):
    factories.queue_item(object_id="1", now=now - timedelta(minutes=7))
    factories.queue_item(object_id="2", now=now - timedelta(minutes=1))

    view = stats.queue_stats(now)

    assert view["depth"] == 2
    assert view["by_status"][QueueItem.Status.PENDING] == 2
    assert view["by_entity"] == {"products": {"pending": 2}}
    assert view["oldest_pending_age_seconds"] == pytest.approx(420)


def test_open_alerts_leave_out_resolved_ones(now):
    factories.alert("queue_backlog")
    factories.alert("dlq_size", status=Alert.Status.RESOLVED)

    assert stats.overview(now)["open_alerts"] == 1


def test_freshness_p95_is_commit_minus_zoho_modified_time_per_entity(now):
    finished_row(
        "products",
        "1",
        received=now - timedelta(minutes=2),
        finished=now - timedelta(minutes=1),
        version=now - timedelta(minutes=3),
    )

    found = stats.freshness_by_entity(now)

    assert set(found) == {"products"}
    assert 60 <= found["products"]["since_modified"]["p95_seconds"] <= 120


def test_series_sums_labels_per_step_and_fills_gaps(now):
    start = rollups.minute_of(now) - timedelta(minutes=10)
    factories.metric(rollups.Series.APPLIED, 4, at=start)
    Metric.objects.create(name=rollups.Series.APPLIED, value=6, labels={"entity": "invoices"}, at=start)
    factories.metric(rollups.Series.APPLIED, 1, at=start + timedelta(minutes=3))

    points = stats.series(rollups.Series.APPLIED, start, now, step=timedelta(minutes=5))

    assert [p["value"] for p in points] == [11, 0, 0]


def test_a_day_reads_whole_hours_from_the_hourly_points_and_the_edges_per_minute(now):
    # Rows three hours ago, 30 minutes ago and now; every minute up to the last rolled up.
    times = [now - timedelta(hours=3), now - timedelta(minutes=30), now - timedelta(seconds=5)]
    for i, at in enumerate(times):
        finished_row(received=at, finished=at, object_id=str(i))
    for at in times[:2]:
        rollups.rollup_minute(rollups.minute_of(at))
    rollups.rollup_minute(rollups.minute_of(now) - timedelta(minutes=1))  # the mark: rolled up to here

    assert stats.overview(now)["last_day"]["applied"] == 3
    assert stats.overview(now)["last_hour"]["applied"] == 2


def test_throughput_series_by_hour_reads_the_hourly_points(now):
    at = now - timedelta(hours=2)
    finished_row(received=at, finished=at)
    rollups.rollup_minute(rollups.minute_of(at))

    points = stats.series(rollups.Series.APPLIED_HOURLY, now - stats.DAY, now, step=timedelta(hours=1))

    assert len(points) == 25
    assert [p["value"] for p in points if p["value"]] == [1]
    assert next(p for p in points if p["value"])["at"] == rollups.hour_of(at)
