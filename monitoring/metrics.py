"""GET /metrics: Prometheus text, read from the database at scrape time.

A collector, not counters in process memory: the numbers are the same whichever of many gunicorn
workers answers, and whichever qcluster process did the work. Counters come from the roll-ups'
running totals (monitoring.rollups), so they trail the present by at most a minute and never go back;
gauges are indexed reads of the tables as they are now.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from monitoring import registry, stats
from monitoring.rollups import FRESHNESS_BUCKETS, Histogram, Series, recent_dead_letters
from sync import budget
from sync.models import WorkerHeartbeat
from sync.zoho import breaker
from tdscore.models import MetricTotal

logger = logging.getLogger(__name__)

COUNTERS = {
    Series.RECEIVED: ("tds_received", "Webhooks received and stored"),
    Series.APPLIED: ("tds_applied", "Queue rows applied to the ERP"),
    Series.FAILED: ("tds_failed", "Queue rows dead-lettered"),
    Series.SKIPPED: ("tds_skipped", "Queue rows skipped (stale, unchanged, superseded, summary)"),
}


class DatabaseCollector:
    """Everything an operator graphs or alerts on, from the tables."""

    def collect(self):
        now = timezone.now()
        yield from self._counters()
        yield self._queue_rows()
        yield _gauge(
            "tds_queue_oldest_pending_age_seconds",
            "Seconds the oldest due row has waited",
            stats.oldest_pending_age(now) or 0,
        )
        yield self._dead_letters(now)
        yield from self._zoho(now)
        yield self._heartbeats(now)
        for collect in registry.collectors:
            yield from collect(now)

    def _counters(self):
        totals = MetricTotal.objects.filter(name__in=[*COUNTERS, Series.LATENCY_BUCKET, Series.LATENCY_SUM])
        families = {
            series: CounterMetricFamily(name, doc, labels=["entity"]) for series, (name, doc) in COUNTERS.items()
        }
        latency = Histogram()
        for total in totals:
            if total.name in families:
                families[total.name].add_metric([total.labels.get("entity", "")], total.value)
            elif total.name == Series.LATENCY_BUCKET:
                latency.buckets[total.labels.get("le", "")] = int(total.value)
            else:
                latency.sum_seconds = total.value
        yield from families.values()
        histogram = HistogramMetricFamily(
            "tds_end_to_end_latency_seconds", "Webhook (or pull) arrival to ERP commit, of applied rows"
        )
        # Bounds written as Prometheus writes them (2.0, +Inf), so they join with other exporters' series.
        buckets = [(floatToGoString(float(le)), n) for le, n in latency.cumulative()]
        histogram.add_metric([], buckets, latency.sum_seconds)
        yield histogram
        yield self._freshness()
        calls = MetricTotal.objects.filter(name=Series.ZOHO_CALLS).first()
        yield CounterMetricFamily("tds_zoho_calls", "Zoho API calls made", value=calls.value if calls else 0)

    def _freshness(self):
        """ERP commit minus Zoho's modification (`since_modified`, live changes; `backfill`, old records a
        pull brought) and minus the webhook's receipt (`since_received`), per entity, from the roll-ups'
        running totals."""
        found: dict[tuple[str, str], Histogram] = {}
        for total in MetricTotal.objects.filter(name__in=[Series.FRESHNESS_BUCKET, Series.FRESHNESS_SUM]):
            key = (total.labels.get("entity", ""), total.labels.get("lag", ""))
            histogram = found.setdefault(key, Histogram(bounds=FRESHNESS_BUCKETS))
            if total.name == Series.FRESHNESS_BUCKET:
                histogram.buckets[total.labels.get("le", "")] = int(total.value)
            else:
                histogram.sum_seconds = total.value
        family = HistogramMetricFamily(
            "tds_freshness_seconds",
            "ERP commit minus Zoho's last_modified_time (lag since_modified: live changes; backfill: old records "
            "a pull brought) or minus the webhook's receipt (since_received), of applied rows",
            labels=["entity", "lag"],
        )
        for (entity, lag), histogram in sorted(found.items()):
            buckets = [(floatToGoString(float(le)), n) for le, n in histogram.cumulative()]
            family.add_metric([entity, lag], buckets, histogram.sum_seconds)
        return family

    def _queue_rows(self):
        family = GaugeMetricFamily(
            "tds_queue_rows",
            "Unfinished queue rows (pending, retry, processing) by status and entity; finished ones are the counters",
            labels=["status", "entity"],
        )
        for status, entity, n in stats.active_rows():
            family.add_metric([status, entity], n)
        return family

    def _dead_letters(self, now):
        family = GaugeMetricFamily(
            "tds_dead_letters_open", "Unresolved dead letters by reason (at most a minute old)", labels=["reason"]
        )
        for reason, n in recent_dead_letters(now).items():
            family.add_metric([reason], n)
        return family

    def _zoho(self, now):
        status = budget.status(now)
        yield _gauge(
            "tds_zoho_calls_today", "Zoho API calls counted today (the organisation's day)", status.calls_today
        )
        yield _gauge("tds_zoho_daily_cap", "The organisation's daily Zoho call cap", status.daily_cap)
        current = breaker.state(now)
        family = GaugeMetricFamily("tds_zoho_breaker_state", "1 for the Zoho circuit breaker's state", labels=["state"])
        for state in breaker.Circuit:
            family.add_metric([state], 1 if state == current else 0)
        yield family

    def _heartbeats(self, now):
        family = GaugeMetricFamily(
            "tds_worker_heartbeat_age_seconds", "Seconds since each drainer's last heartbeat", labels=["worker"]
        )
        for worker_id, seen in WorkerHeartbeat.objects.values_list("worker_id", "last_seen_at").order_by("worker_id"):
            family.add_metric([worker_id], max((now - seen).total_seconds(), 0.0))
        return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


@require_GET
def metrics(request):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    try:
        body = generate_latest(registry)
    except DatabaseError:
        # A database outage is 503 everywhere, never 500.
        logger.exception("metrics: the database does not answer")
        return HttpResponse("# the database does not answer\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
