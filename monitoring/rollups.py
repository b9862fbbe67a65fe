"""Per-minute roll-ups of the pipeline into tds_metrics, for the dashboard's tiles and charts.

Each minute gets one point per series and label set, written by `rollup(now)` (the schedule
`tds-metric-rollup` runs it every minute): changes received, applied, failed and skipped per entity;
the end-to-end latency of applied changes as a histogram (mergeable across minutes, so the p95 of an
hour or a day is read from sixty or 1,440 points instead of the queue) plus its p50/p95/p99 for the
charts; the freshness of applied changes per entity (`Lag`: how far the ERP trails Zoho's
modification and the webhook's receipt, with old records a pull brought kept apart); the queue depth, the open dead letters and the Zoho calls. Re-running a minute replaces its
points (delete and insert in one transaction; a unique key on name, minute and labels backs it up),
so a retried or doubled schedule never counts a minute twice. Every query reads one minute through
an index (`received_at`, `finished_at`, `started_at`), so the cost does not grow with the tables.

Series that add up also keep running totals (tds_metric_totals), which /metrics exposes as
Prometheus counters: retention trims tds_metrics, and a counter must never go back.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, models, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from sync.models import DeadLetter, InboxEvent, QueueItem, SyncRun
from sync.zoho.models import ZohoCall
from tdscore.models import Metric, MetricTotal

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
# How far back a late or missed schedule is caught up; older minutes stay as they are.
CATCH_UP = timedelta(hours=1)
# Upper bounds (seconds) of the end-to-end latency histogram; the last bucket is everything above.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 86400)
# The same for freshness: from the tens of milliseconds a woken drainer takes to the year-old
# records of a first pull.
DAY_SECONDS = 86400
FRESHNESS_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600),
    *(2 * 3600, 4 * 3600, 12 * 3600, DAY_SECONDS, 7 * DAY_SECONDS, 30 * DAY_SECONDS, 365 * DAY_SECONDS),
)
INF = "+Inf"


class Series(models.TextChoices):
    """Names of the points in tds_metrics."""

    RECEIVED = "tds_received"  # {entity}: webhooks stored in the minute
    APPLIED = "tds_applied"  # {entity}: queue rows completed in the minute
    FAILED = "tds_failed"  # {entity}: queue rows dead-lettered in the minute
    SKIPPED = "tds_skipped"  # {entity}: queue rows skipped (stale, unchanged, superseded…)
    LATENCY_BUCKET = "tds_latency_bucket"  # {le}: applied rows whose latency fell in the bucket
    LATENCY_SUM = "tds_latency_sum_seconds"  # the latencies of the minute's applied rows, added up
    LATENCY_P50 = "tds_latency_p50_seconds"
    LATENCY_P95 = "tds_latency_p95_seconds"
    LATENCY_P99 = "tds_latency_p99_seconds"
    QUEUE_DEPTH = "tds_queue_depth"  # pending and retry rows when the minute was rolled up
    DLQ_SIZE = "tds_dlq_size"  # {reason}: unresolved dead letters, likewise
    ZOHO_CALLS = "tds_zoho_calls"  # Zoho API calls started in the minute
    ROLLED_UP = "tds_rollup_points"  # marks a minute as rolled up: the points written for it
    # The same sums per hour (at = the hour's start), kept up to date as its minutes are rolled up,
    # so a day's figures read 24 points a series instead of 1,440.
    RECEIVED_HOURLY = "tds_received_hourly"
    APPLIED_HOURLY = "tds_applied_hourly"
    FAILED_HOURLY = "tds_failed_hourly"
    SKIPPED_HOURLY = "tds_skipped_hourly"
    LATENCY_BUCKET_HOURLY = "tds_latency_bucket_hourly"
    LATENCY_SUM_HOURLY = "tds_latency_sum_seconds_hourly"
    FRESHNESS_BUCKET = "tds_freshness_bucket"  # {entity, lag, le}: applied rows whose lag fell in the bucket
    FRESHNESS_SUM = "tds_freshness_sum_seconds"  # {entity, lag}: their lags, added up


class Lag(models.TextChoices):
    """How late an applied change reached the ERP, measured three ways."""

    SINCE_MODIFIED = "since_modified", "ERP commit minus Zoho's last_modified_time, of live changes"
    SINCE_RECEIVED = "since_received", "ERP commit minus the webhook's receipt"
    # A pull's old records (last year's invoices on a first full pull) are history, not lag: kept
    # apart so they neither read as "a day stale" nor open a freshness alert.
    BACKFILL = "backfill", "ERP commit minus Zoho's last_modified_time, of old records a pull brought"


COUNTED = (Series.RECEIVED, Series.APPLIED, Series.FAILED, Series.SKIPPED)
TOTALLED = (
    *COUNTED,
    Series.LATENCY_BUCKET,
    Series.LATENCY_SUM,
    Series.ZOHO_CALLS,
    Series.FRESHNESS_BUCKET,
    Series.FRESHNESS_SUM,
)
GAUGES = (Series.QUEUE_DEPTH, Series.DLQ_SIZE)
HOURLY = {
    Series.RECEIVED: Series.RECEIVED_HOURLY,
    Series.APPLIED: Series.APPLIED_HOURLY,
    Series.FAILED: Series.FAILED_HOURLY,
    Series.SKIPPED: Series.SKIPPED_HOURLY,
    Series.LATENCY_BUCKET: Series.LATENCY_BUCKET_HOURLY,
    Series.LATENCY_SUM: Series.LATENCY_SUM_HOURLY,
}
PER_MINUTE = [name for name in Series.values if name not in HOURLY.values()]


def bucket_labels(bounds: tuple = LATENCY_BUCKETS) -> list[str]:
    return [f"{bound:g}" for bound in bounds] + [INF]


@dataclass
class Histogram:
    """Counts of durations per bucket (not cumulative) and their sum: adds up across minutes."""

    buckets: Counter = field(default_factory=Counter)  # bucket label → how many fell in it
    sum_seconds: float = 0.0
    bounds: tuple = LATENCY_BUCKETS  # upper bounds of the buckets; the last bucket is everything above

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def add(self, other: Histogram) -> Histogram:
        self.buckets.update(other.buckets)
        self.sum_seconds += other.sum_seconds
        return self

    def percentile(self, q: float) -> float | None:
        """The q-quantile, interpolated inside its bucket (as Prometheus' histogram_quantile does)."""
        if not self.count:
            return None
        rank, seen, lower = q * self.count, 0, 0.0
        for label, upper in zip(bucket_labels(self.bounds), [*self.bounds, math.inf], strict=True):
            n = self.buckets.get(label, 0)
            if n and seen + n >= rank:
                return lower if upper == math.inf else lower + (upper - lower) * (rank - seen) / n
            seen, lower = seen + n, upper
        return lower

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, rows at or below it) for every bound and +Inf: Prometheus' bucket samples."""
        running, out = 0, []
        for label in bucket_labels(self.bounds):
            running += self.buckets.get(label, 0)
            out.append((label, running))
        return out


@dataclass
class Tally:
    """What happened in a span of time: counts per series and entity, the latency histogram and the
    freshness histograms (lag → entity → histogram)."""

    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latency: Histogram = field(default_factory=Histogram)
    lags: dict[Lag, dict[str, Histogram]] = field(default_factory=dict)

    def total(self, series: str) -> int:
        return sum(self.counts[series].values())

    def add(self, other: Tally) -> Tally:
        for series, per_entity in other.counts.items():
            self.counts[series].update(per_entity)
        self.latency.add(other.latency)
        for lag, per_entity in other.lags.items():
            mine = self.lags.setdefault(lag, {})
            for entity, histogram in per_entity.items():
                mine.setdefault(entity, Histogram(bounds=histogram.bounds)).add(histogram)
        return self

    def percentile(self, q: float) -> float | None:
        return self.latency.percentile(q)


def end_to_end_latency() -> ExpressionWrapper:
    """Commit to the ERP minus arrival: the webhook's receipt, or the queue row's creation for a pull."""
    return ExpressionWrapper(
        F("finished_at") - Coalesce(F("inbox_event__received_at"), F("created_at")), output_field=DurationField()
    )


def freshness() -> ExpressionWrapper:
    """Commit to the ERP minus Zoho's last_modified_time: how far the ERP trails Zoho."""
    return ExpressionWrapper(F("finished_at") - F("version"), output_field=DurationField())


def since_receipt() -> ExpressionWrapper:
    """Commit to the ERP minus the webhook's receipt: how far the ERP trails the webhook."""
    return ExpressionWrapper(F("finished_at") - F("inbox_event__received_at"), output_field=DurationField())


PULL_RUNS = (SyncRun.RunType.FULL, SyncRun.RunType.INCREMENTAL, SyncRun.RunType.STOCK)


def history_cutoff(queued_from: datetime) -> Case | None:
    """Per queue row (queued at or after `queued_from`): the start of its entity's last pull that had
    completed when the row was queued, or of the entity's first pull when none had. A pulled
    record modified before that was already there to read: it is history (a first full pull of
    last year's invoices, a re-read), not lag. None when no pull ever ran: every change is live.

    A CASE over the few runs that completed since `queued_from`, newest first, so the rows are
    classified in the query that measures them."""
    pulls = SyncRun.objects.filter(run_type__in=PULL_RUNS)
    first = dict(pulls.values_list("entity").annotate(at=Min("started_at")).order_by())
    if not first:
        return None
    completed = pulls.filter(status=SyncRun.Status.COMPLETED, finished_at__isnull=False, started_at__isnull=False)
    # An entity's pulls never overlap (each takes the entity's lock): the latest start is the last finished.
    before = dict(
        completed.filter(finished_at__lt=queued_from).values_list("entity").annotate(at=Max("started_at")).order_by()
    )
    since = completed.filter(finished_at__gte=queued_from).order_by("-finished_at")
    whens = [
        When(entity=entity, created_at__gte=finished, then=Value(started))
        for entity, started, finished in since.values_list("entity", "started_at", "finished_at")
    ]
    whens += [When(entity=entity, then=Value(before.get(entity, at))) for entity, at in first.items() if at]
    return Case(*whens, default=Value(None), output_field=DateTimeField())


def lag_histograms(finished: QuerySet) -> dict[Lag, dict[str, Histogram]]:
    """Histograms per entity of each `Lag`, over the rows of `finished` that were applied."""
    applied = finished.filter(status=QueueItem.Status.COMPLETED)
    queued_from = applied.aggregate(at=Min("created_at"))["at"]
    if queued_from is None:
        return {lag: {} for lag in Lag}
    cutoff = history_cutoff(queued_from)
    if cutoff is None:
        old = Value(False)
    else:
        old = Case(
            When(~Q(source=QueueItem.Source.WEBHOOK) & Q(version__lt=cutoff), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    versioned = applied.filter(version__isnull=False).annotate(old=old)
    found = {
        Lag.SINCE_MODIFIED: histograms(versioned.filter(old=False), freshness(), by="entity", bounds=FRESHNESS_BUCKETS),
        Lag.BACKFILL: histograms(versioned.filter(old=True), freshness(), by="entity", bounds=FRESHNESS_BUCKETS),
        Lag.SINCE_RECEIVED: histograms(
            applied.filter(inbox_event__isnull=False), since_receipt(), by="entity", bounds=FRESHNESS_BUCKETS
        ),
    }
    return {lag: {entity: h for entity, h in per_entity.items() if h.count} for lag, per_entity in found.items()}


def histograms(
    rows, duration: ExpressionWrapper, *, by: str | None = None, bounds: tuple = LATENCY_BUCKETS
) -> dict[str | None, Histogram]:
    """Histograms of `duration` over `rows` (one per value of `by`, else one under None), in one query."""
    rows = rows.annotate(duration=duration)
    measures = {
        "total": Count("id"),
        "sum": Sum("duration"),
        **{f"le{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound))) for i, bound in enumerate(bounds)},
    }
    found = rows.values(by).annotate(**measures).order_by() if by else [rows.aggregate(**measures)]
    result = {}
    for row in found:
        histogram = Histogram(sum_seconds=row["sum"].total_seconds() if row["sum"] else 0.0, bounds=bounds)
        previous = 0
        for i, label in enumerate(bucket_labels(bounds)):
            upto = row[f"le{i}"] if i < len(bounds) else row["total"]
            if upto - previous:
                histogram.buckets[label] = upto - previous
            previous = upto
        result[row[by] if by else None] = histogram
    return result


def measure(start: datetime, end: datetime) -> Tally:
    """Count [start, end) from the tables themselves (the roll-up, and the dashboard's live edge)."""
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
        tally.latency = histograms(applied, end_to_end_latency())[None]
        tally.lags = lag_histograms(finished)
    return tally


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _points(minute: datetime, tally: Tally, *, live: bool) -> list[Metric]:
    points = [
        Metric(name=series, value=n, labels={"entity": entity}, at=minute)
        for series in COUNTED
        for entity, n in sorted(tally.counts[series].items())
    ]
    points += [
        Metric(name=Series.LATENCY_BUCKET, value=n, labels={"le": le}, at=minute)
        for le, n in tally.latency.buckets.items()
    ]
    if tally.latency.count:
        points.append(Metric(name=Series.LATENCY_SUM, value=tally.latency.sum_seconds, labels={}, at=minute))
    for lag, per_entity in sorted(tally.lags.items()):
        for entity, histogram in sorted(per_entity.items()):
            labels = {"entity": entity, "lag": str(lag)}
            points += [
                Metric(name=Series.FRESHNESS_BUCKET, value=n, labels={**labels, "le": le}, at=minute)
                for le, n in histogram.buckets.items()
            ]
            points.append(Metric(name=Series.FRESHNESS_SUM, value=histogram.sum_seconds, labels=labels, at=minute))
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
        points += [
            Metric(name=Series.DLQ_SIZE, value=n, labels={"reason": reason}, at=minute)
            for reason, n in open_dead_letters().items()
        ]
    points.append(Metric(name=Series.ROLLED_UP, value=len(points) + 1, labels={}, at=minute))
    return points


def open_dead_letters() -> dict[str, int]:
    """Unresolved dead letters by reason, every reason present (0 where none), counted now."""
    found = dict(DeadLetter.objects.unresolved().values_list("reason").annotate(n=Count("id")).order_by())
    return {reason: found.get(reason, 0) for reason in sorted({*DeadLetter.Reason.values, *found})}


def recent_dead_letters(now: datetime) -> dict[str, int]:
    """The same, from the minute rolled up last when it is at most two minutes old, else counted.

    Counting reads every open dead letter (100,000 rows in a bad week), which a Prometheus scrape
    every 15 s need not repeat: it reads the roll-up's points instead, a minute old at most."""
    newest = last_rolled_minute(since=minute_of(now) - 2 * MINUTE)
    if newest is not None:
        points = Metric.objects.filter(name=Series.DLQ_SIZE, at=newest).values_list("labels", "value")
        found = {labels.get("reason", ""): int(value) for labels, value in points}
        if found:
            return found
    return open_dead_letters()


def rollup_minute(minute: datetime, *, live: bool = True) -> int:
    """Write the points of the minute starting at `minute`, replacing any it had. Returns how many.

    The running totals move by the difference between the new points and those they replace, so
    rolling a minute up again (a retried task, a catch-up) leaves them as right as the first time.
    """
    points = _points(minute, measure(minute, minute + MINUTE), live=live)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Two roll-ups at once (a doubled schedule) would both read the same totals: take turns.
            # (SQLite's IMMEDIATE transactions already do.)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('tds-metric-rollup'))")
        replaced = Metric.objects.filter(at=minute, name__in=PER_MINUTE)
        if not live:
            replaced = replaced.exclude(name__in=GAUGES)
        change = _sums(points)
        change.subtract(_sums(replaced.filter(name__in=TOTALLED)))
        replaced.delete()
        Metric.objects.bulk_create(points)
        _add_to_totals(change, minute)
        _rollup_hour(hour_of(minute))
    return len(points)


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _rollup_hour(hour: datetime) -> None:
    """Replace the hour's points with the sums of its minutes rolled up so far."""
    sums = (
        Metric.objects.filter(name__in=list(HOURLY), at__gte=hour, at__lt=hour + HOUR)
        .values("name", "labels")
        .annotate(total=Sum("value"))
        .order_by()
    )
    points = [Metric(name=HOURLY[row["name"]], value=row["total"], labels=row["labels"], at=hour) for row in sums]
    Metric.objects.filter(at=hour, name__in=list(HOURLY.values())).delete()
    Metric.objects.bulk_create(points)


def _label_key(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


def _sums(points) -> Counter:
    sums = Counter()
    for point in points:
        if point.name in TOTALLED:
            sums[(point.name, _label_key(point.labels))] += point.value
    return sums


def _add_to_totals(change: Counter, at: datetime) -> None:
    change = {key: value for key, value in change.items() if value}
    if not change:
        return
    totals = {
        (row.name, _label_key(row.labels)): row
        for row in MetricTotal.objects.select_for_update().filter(name__in={name for name, _ in change})
    }
    for (name, labels), value in change.items():
        row = totals.setdefault((name, labels), MetricTotal(name=name, labels=dict(labels)))
        row.value += value
        row.updated_at = at
    MetricTotal.objects.bulk_create([row for row in totals.values() if row.pk is None])
    MetricTotal.objects.bulk_update([row for row in totals.values() if row.pk is not None], ["value", "updated_at"])


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
