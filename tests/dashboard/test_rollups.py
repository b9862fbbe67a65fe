from __future__ import annotations

from datetime import timedelta

import pytest

from monitoring import rollups
from monitoring.rollups import Series
from tdscore.models import Metric, MetricTotal
from tests import factories

from .conftest import dead_lettered, finished_row

pytestmark = pytest.mark.django_db


def points(name):
    return {
        (m.labels.get("entity") or m.labels.get("le") or m.labels.get("reason", "")): m.value
        for m in Metric.objects.filter(name=name)
        if m.value or name != Series.DLQ_SIZE
    }


def test_rollup_writes_the_minute_that_just_ended(now):
    minute = rollups.minute_of(now) - timedelta(minutes=1)
    finished_row("products", "1", received=minute + timedelta(seconds=1), finished=minute + timedelta(seconds=2))
    finished_row("invoices", "2", received=minute + timedelta(seconds=5), finished=minute + timedelta(seconds=50))
    dead_lettered("products", "3", at=minute + timedelta(seconds=30))
    factories.queue_item(object_id="4", now=now)

    rollups.rollup(now)

    assert points(Series.RECEIVED) == {"products": 2, "invoices": 1}
    assert points(Series.APPLIED) == {"products": 1, "invoices": 1}
    assert points(Series.FAILED) == {"products": 1}
    assert points(Series.QUEUE_DEPTH) == {"": 1}
    assert points(Series.DLQ_SIZE) == {"retries_exhausted": 1}
    assert sum(points(Series.LATENCY_BUCKET).values()) == 2
    assert set(Metric.objects.filter(name__in=rollups.PER_MINUTE).values_list("at", flat=True)) == {minute}


def test_rolling_up_a_minute_twice_does_not_count_it_twice(now):
    minute = rollups.minute_of(now) - timedelta(minutes=1)
    finished_row(received=minute, finished=minute + timedelta(seconds=1))

    rollups.rollup(now)
    rollups.rollup(now)

    assert points(Series.APPLIED) == {"products": 1}
    assert Metric.objects.filter(name=Series.ROLLED_UP).count() == 1


def test_missed_minutes_are_caught_up(now):
    minute = rollups.minute_of(now)
    rollups.rollup(now - timedelta(minutes=5))
    finished_row(received=minute - timedelta(minutes=3), finished=minute - timedelta(minutes=3))

    rollups.rollup(now)

    assert Metric.objects.filter(name=Series.ROLLED_UP).count() == 6  # 11:54, then 11:55 to 11:59
    assert points(Series.APPLIED) == {"products": 1}


def test_running_totals_survive_a_rerun_and_the_trimming_of_old_points(now):
    minute = rollups.minute_of(now) - timedelta(minutes=1)
    finished_row(received=minute, finished=minute + timedelta(seconds=1))
    rollups.rollup(now)
    rollups.rollup(now)
    Metric.objects.all().delete()  # retention

    totals = {(t.name, t.labels.get("entity") or t.labels.get("le", "")): t.value for t in MetricTotal.objects.all()}

    assert totals[(Series.APPLIED, "products")] == 1
    assert totals[(Series.RECEIVED, "products")] == 1
    assert totals[(Series.LATENCY_BUCKET, "1")] == 1


def test_each_hour_keeps_the_sums_of_its_minutes_rolled_up_so_far(now):
    hour = rollups.hour_of(now)
    for offset, object_id in ((1, "1"), (2, "2")):
        at = hour + timedelta(minutes=offset)
        finished_row(received=at, finished=at, object_id=object_id)
        rollups.rollup_minute(at)

    assert points(Series.APPLIED_HOURLY) == {"products": 2}
    assert Metric.objects.get(name=Series.APPLIED_HOURLY).at == hour
