from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import Alert
from monitoring import rollups
from tests import factories

from .conftest import dead_lettered, finished_row

pytestmark = pytest.mark.django_db


def scrape() -> dict:
    answer = Client().get("/metrics")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_needs_no_login_and_every_name_is_tds():
    samples = scrape()

    assert samples
    assert all(name.startswith("tds_") for name, _ in samples)


def test_queue_rows_by_status_and_entity_and_oldest_pending(now):
    factories.queue_item("products", "1", now=now - timedelta(minutes=2))
    factories.queue_item("invoices", "2", now=now)

    samples = scrape()

    assert samples[("tds_queue_rows", (("entity", "products"), ("status", "pending")))] == 1
    assert samples[("tds_queue_rows", (("entity", "invoices"), ("status", "pending")))] == 1
    assert samples[("tds_queue_oldest_pending_age_seconds", ())] == pytest.approx(120)


def test_dead_letters_by_reason_and_open_alerts_by_severity(now):
    dead_lettered("products", "1", reason="validation")
    factories.alert("queue_backlog", severity=Alert.Severity.CRITICAL)

    samples = scrape()

    assert samples[("tds_dead_letters_open", (("reason", "validation"),))] == 1
    assert samples[("tds_dead_letters_open", (("reason", "lease_expired"),))] == 0
    assert samples[("tds_alerts_open", (("severity", "critical"),))] == 1
    assert samples[("tds_alerts_open", (("severity", "info"),))] == 0


def test_applied_and_failed_counters_and_latency_histogram_from_the_rollups(now):
    minute = rollups.minute_of(now) - timedelta(minutes=1)
    finished_row("products", "1", received=minute, finished=minute + timedelta(seconds=3))
    dead_lettered("products", "2", at=minute + timedelta(seconds=5))
    rollups.rollup(now)

    samples = scrape()

    assert samples[("tds_applied_total", (("entity", "products"),))] == 1
    assert samples[("tds_failed_total", (("entity", "products"),))] == 1
    assert samples[("tds_end_to_end_latency_seconds_bucket", (("le", "2.0"),))] == 0
    assert samples[("tds_end_to_end_latency_seconds_bucket", (("le", "5.0"),))] == 1
    assert samples[("tds_end_to_end_latency_seconds_count", ())] == 1
    assert samples[("tds_end_to_end_latency_seconds_sum", ())] == pytest.approx(3)


def test_zoho_budget_breaker_and_heartbeats(now, settings):
    settings.ZOHO_ORGANIZATION_ID = "60012345"
    factories.limiter_state(calls_today=40, day_resets_at=now + timedelta(hours=3))
    factories.breaker_state(state="open", open_until=now + timedelta(minutes=1))
    factories.worker_heartbeat("host:7", last_seen_at=now - timedelta(seconds=45))

    samples = scrape()

    assert samples[("tds_zoho_calls_today", ())] == 40
    assert samples[("tds_zoho_daily_cap", ())] == 1000
    assert samples[("tds_zoho_breaker_state", (("state", "open"),))] == 1
    assert samples[("tds_zoho_breaker_state", (("state", "closed"),))] == 0
    assert samples[("tds_worker_heartbeat_age_seconds", (("worker", "host:7"),))] == pytest.approx(45)


def test_dead_letters_are_read_from_the_last_minute_rolled_up_when_it_is_fresh(now):
    dead_lettered("products", "1", reason="validation")
    rollups.rollup(now)
    dead_lettered("products", "2", reason="validation")  # after the roll-up: seen at the next one

    fresh = scrape()[("tds_dead_letters_open", (("reason", "validation"),))]
    with time_machine.travel(now + timedelta(minutes=5), tick=False):
        stale = scrape()[("tds_dead_letters_open", (("reason", "validation"),))]

    assert (fresh, stale) == (1, 2)
