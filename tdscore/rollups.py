"""Per-minute roll-ups of the pipeline into tds_metrics, for the dashboard's tiles and charts.

Each minute gets one point per series and label set, written by `rollup(now)` (the schedule
`tds-metric-rollup` runs it every minute): changes received, applied, failed and skipped per entity;
the end-to-end latency of applied changes as a histogram (mergeable across minutes, so the p95 of an
hour or a day is read from sixty or 1,440 points instead of the queue) plus its p50/p95/p99 for the
charts; the queue depth, the open dead letters and the Zoho calls. Re-running a minute replaces its
points (delete and insert in one transaction; a unique key on name, minute and labels backs it up),
so a retried or doubled schedule never counts a minute twice. Every query reads one minute through
an index (`received_at`, `finished_at`, `started_at`), so the cost does not grow with the tables.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q
from django.db.models.functions import Coalesce

from tdscore.models import Metric

MINUTE = timedelta(minutes=1)
# How far back a late or missed schedule is caught up; older minutes stay as they are.
CATCH_UP = timedelta(hours=1)
# Upper bounds (seconds) of the end-to-end latency histogram; the last bucket is everything above.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 86400)
INF = "+Inf"


class Series(models.TextChoices):
    """Names of the points in tds_metrics."""

    RECEIVED = "tds_received"  # {entity}: webhooks stored in the minute
    APPLIED = "tds_applied"  # {entity}: queue rows completed in the minute
    FAILED = "tds_failed"  # {entity}: queue rows dead-lettered in the minute
    SKIPPED = "tds_skipped"  # {entity}: queue rows skipped (stale, unchanged, superseded…)
    LATENCY_BUCKET = "tds_latency_bucket"  # {le}: applied rows whose latency fell in the bucket
    LATENCY_P50 = "tds_latency_p50_seconds"
    LATENCY_P95 = "tds_latency_p95_seconds"
    LATENCY_P99 = "tds_latency_p99_seconds"
    QUEUE_DEPTH = "tds_queue_depth"  # pending and retry rows when the minute was rolled up
    DLQ_SIZE = "tds_dlq_size"  # unresolved dead letters, likewise
    ZOHO_CALLS = "tds_zoho_calls"  # Zoho API calls started in the minute
    ROLLED_UP = "tds_rollup_points"  # marks a minute as rolled up: the points written for it


COUNTED = (Series.RECEIVED, Series.APPLIED, Series.FAILED, Series.SKIPPED)


def bucket_labels() -> list[str]:
    return [f"{bound:g}" for bound in LATENCY_BUCKETS] + [INF]


@dataclass
class Tally:
    """What happened in a span of time: counts per series and entity, and the latency histogram."""

    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    buckets: Counter = field(default_factory=Counter)  # bucket label → applied rows in it

    def total(self, series: str) -> int:
        return sum(self.counts[series].values())

    def add(self, other: Tally) -> Tally:
        for series, per_entity in other.counts.items():
            self.counts[series].update(per_entity)
        self.buckets.update(other.buckets)
        return self

    def percentile(self, q: float) -> float | None:
        return percentile(self.buckets, q)


def percentile(buckets: Counter, q: float) -> float | None:
    """The q-quantile of a bucketed histogram, interpolated inside its bucket (as Prometheus does)."""
    total = sum(buckets.values())
    if not total:
        return None
    rank, seen, lower = q * total, 0, 0.0
    for label, upper in zip(bucket_labels(), [*LATENCY_BUCKETS, math.inf], strict=True):
        count = buckets.get(label, 0)
        if count and seen + count >= rank:
            if upper == math.inf:
                return lower  # beyond the last bound: the bound is all we know
            return lower + (upper - lower) * (rank - seen) / count
        seen, lower = seen + count, upper
    return lower


def end_to_end_latency() -> ExpressionWrapper:
    """Commit to the ERP minus arrival: the webhook's receipt, or the queue row's creation for a pull."""
    return ExpressionWrapper(
        F("finished_at") - Coalesce(F("inbox_event__received_at"), F("created_at")), output_field=DurationField()
    )


def freshness() -> ExpressionWrapper:
    """Commit to the ERP minus Zoho's last_modified_time: how far the ERP trails Zoho (SPEC §9)."""
    return ExpressionWrapper(F("finished_at") - F("version"), output_field=DurationField())


def histograms(rows, duration: ExpressionWrapper, *, by: str | None = None) -> dict[str | None, Counter]:
    """Histograms of `duration` over `rows` (one per value of `by`, else one under None), in one query."""
    rows = rows.annotate(duration=duration)
    below = {
        f"le{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(LATENCY_BUCKETS)
    }
    found = (
        rows.values(by).annotate(total=Count("id"), **below).order_by()
        if by
        else [rows.aggregate(total=Count("id"), **below)]
    )
    result = {}
    for cumulative in found:
        buckets, previous = Counter(), 0
        for i, label in enumerate(bucket_labels()):
            upto = cumulative[f"le{i}"] if i < len(LATENCY_BUCKETS) else cumulative["total"]
            if upto - previous:
                buckets[label] = upto - previous
            previous = upto
        result[cumulative[by] if by else None] = buckets
    return result


def measure(start: datetime, end: datetime) -> Tally:
    """Count [start, end) from the tables themselves (the roll-up, and the dashboard's live edge)."""
    from sync.models import InboxEvent, QueueItem

    tally = Tally()
    received = InboxEvent.objects.filter(received_at__gte=start, received_at__lt=end)
    for row in received.values("entity").annotate(n=Count("id")).order_by():
        tally.counts[Series.RECEIVED][row["entity"]] = row["n"]
    finished = QueueItem.objects.filter(finished_at__gte=start, finished_at__lt=end)
    by_status = {
        QueueItem.Status.COMPLETED: Series.APPLIED,
        QueueItem.Status.DEAD_LETTER: Series.FAILED,
        QueueItem.Status.SKIPPED: Series.SKIPPED,
    }
    for row in finished.values("entity", "status").annotate(n=Count("id")).order_by():
        if row["status"] in by_status:
            tally.counts[by_status[row["status"]]][row["entity"]] = row["n"]
    if tally.total(Series.APPLIED):
        applied = finished.filter(status=QueueItem.Status.COMPLETED)
        tally.buckets = histograms(applied, end_to_end_latency())[None]
    return tally


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _points(minute: datetime, tally: Tally, *, live: bool) -> list[Metric]:
    from sync.models import DeadLetter, QueueItem
    from sync.zoho.models import ZohoCall

    points = [
        Metric(name=series, value=n, labels={"entity": entity}, at=minute)
        for series in COUNTED
        for entity, n in sorted(tally.counts[series].items())
    ]
    points += [
        Metric(name=Series.LATENCY_BUCKET, value=n, labels={"le": le}, at=minute) for le, n in tally.buckets.items()
    ]
    for series, q in ((Series.LATENCY_P50, 0.5), (Series.LATENCY_P95, 0.95), (Series.LATENCY_P99, 0.99)):
        value = tally.percentile(q)
        if value is not None:
            points.append(Metric(name=series, value=value, labels={}, at=minute))
    calls = ZohoCall.objects.filter(started_at__gte=minute, started_at__lt=minute + MINUTE).count()
    points.append(Metric(name=Series.ZOHO_CALLS, value=calls, labels={}, at=minute))
    if live:
        # Gauges can only be read as they are now, so only the minute just ended gets them.
        depth = QueueItem.objects.filter(status__in=QueueItem.WAITING).count()
        points.append(Metric(name=Series.QUEUE_DEPTH, value=depth, labels={}, at=minute))
        points.append(Metric(name=Series.DLQ_SIZE, value=DeadLetter.objects.unresolved().count(), labels={}, at=minute))
    points.append(Metric(name=Series.ROLLED_UP, value=len(points) + 1, labels={}, at=minute))
    return points


def rollup_minute(minute: datetime, *, live: bool = True) -> int:
    """Write the points of the minute starting at `minute`, replacing any it had. Returns how many."""
    points = _points(minute, measure(minute, minute + MINUTE), live=live)
    with transaction.atomic():
        replaced = Metric.objects.filter(at=minute, name__in=Series.values)
        if not live:
            replaced = replaced.exclude(name__in=[Series.QUEUE_DEPTH, Series.DLQ_SIZE])
        replaced.delete()
        Metric.objects.bulk_create(points)
    return len(points)


def last_rolled_minute(since: datetime | None = None) -> datetime | None:
    rows = Metric.objects.filter(name=Series.ROLLED_UP)
    if since is not None:
        rows = rows.filter(at__gte=since)
    return rows.aggregate(last=Max("at"))["last"]


def rollup(now: datetime) -> int:
    """Roll up the minute that has just ended, and any missed in the hour before it. Returns points."""
    current = minute_of(now) - MINUTE
    last = last_rolled_minute(since=current - CATCH_UP)
    # No mark in the last hour: a new installation, or one down for long; start from now.
    minute = last + MINUTE if last is not None else current
    written = 0
    while minute < current:
        written += rollup_minute(minute, live=False)
        minute += MINUTE
    return written + rollup_minute(current, live=True)
