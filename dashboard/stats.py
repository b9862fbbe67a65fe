"""The figures the operations console shows, read the same way by the API and the HTML dashboard.

Window figures (received, applied, failed over an hour or a day, latency percentiles) come from the
per-minute roll-ups in tds_metrics (tdscore.rollups) plus a live count of the minutes not yet rolled
up, so they are right to the second and still cost a few index reads at millions of queue rows.
Live figures (queue depth, oldest pending, open dead letters, alerts, Zoho budget) are indexed counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.db.models import Count, Min, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from tdscore.models import Metric
from tdscore.rollups import (
    COUNTED,
    MINUTE,
    Series,
    Tally,
    freshness,
    histograms,
    last_rolled_minute,
    measure,
    minute_of,
)

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# Series whose per-minute points add up over a longer step; the others (gauges, percentiles) take
# the step's highest point, which is what an operator looks for on a chart of queue depth or p95.
ADDITIVE = {*COUNTED, Series.ZOHO_CALLS}


def _stored(since: datetime, until: datetime) -> Tally:
    tally = Tally()
    rows = (
        Metric.objects.filter(
            name__in=[*COUNTED, Series.LATENCY_BUCKET, Series.LATENCY_SUM], at__gte=since, at__lt=until
        )
        .values("name", label=Coalesce(KT("labels__entity"), KT("labels__le")))
        .annotate(total=Sum("value"))
        .order_by()
    )
    for row in rows:
        if row["name"] == Series.LATENCY_SUM:
            tally.latency.sum_seconds += row["total"]
        elif row["name"] == Series.LATENCY_BUCKET:
            tally.latency.buckets[row["label"]] += int(row["total"])
        else:
            tally.counts[row["name"]][row["label"]] += int(row["total"])
    return tally


def window(since: datetime, now: datetime) -> Tally:
    """What happened in [since, now]: rolled-up minutes from tds_metrics, the rest counted live."""
    first = minute_of(since) + (MINUTE if since != minute_of(since) else timedelta(0))
    last = last_rolled_minute(since=first)
    if last is None:
        return measure(since, now)
    edge = last + MINUTE
    return measure(since, first).add(_stored(first, edge)).add(measure(edge, now))


def _summary(tally: Tally) -> dict:
    applied, failed = tally.total(Series.APPLIED), tally.total(Series.FAILED)
    return {
        "received": tally.total(Series.RECEIVED),
        "applied": applied,
        "failed": failed,
        "skipped": tally.total(Series.SKIPPED),
        "success_rate": applied / (applied + failed) if applied + failed else None,
        "latency_p50_seconds": tally.percentile(0.5),
        "latency_p95_seconds": tally.percentile(0.95),
        "latency_p99_seconds": tally.percentile(0.99),
    }


def oldest_pending_age(now: datetime) -> float | None:
    """Seconds the longest-waiting due row has waited (a retry waits by design, so it is not counted).

    next_attempt_at is a pending row's enqueue or replay time, and it is in tds_queue_due, so this
    is an index-only read however long the backlog."""
    from sync.models import QueueItem

    oldest = QueueItem.objects.filter(status=QueueItem.Status.PENDING).aggregate(at=Min("next_attempt_at"))["at"]
    return max((now - oldest).total_seconds(), 0.0) if oldest else None


def queue_depth() -> int:
    from sync.models import QueueItem

    return QueueItem.objects.filter(status__in=QueueItem.WAITING).count()


def dlq_size() -> int:
    from sync.models import DeadLetter

    return DeadLetter.objects.unresolved().count()


def open_alerts() -> int:
    from alerts.models import Alert

    return Alert.objects.exclude(status=Alert.Status.RESOLVED).count()


def zoho_calls(now: datetime) -> dict:
    from sync import budget

    status = budget.status(now)
    return {"calls_today": status.calls_today, "daily_cap": status.daily_cap, "remaining_today": status.remaining_today}


def overview(now: datetime) -> dict:
    """The tiles: the last hour and day, latency, queue, dead letters, alerts and the Zoho budget."""
    return {
        "generated_at": now,
        "last_hour": _summary(window(now - HOUR, now)),
        "last_day": _summary(window(now - DAY, now)),
        "queue_depth": queue_depth(),
        "oldest_pending_age_seconds": oldest_pending_age(now),
        "dlq_size": dlq_size(),
        "open_alerts": open_alerts(),
        "zoho": zoho_calls(now),
    }


def queue_stats(now: datetime) -> dict:
    """Queue rows by status, and by entity and status; the depth and the oldest pending age."""
    from sync.models import QueueItem

    by_status = Counter({status: 0 for status in QueueItem.Status.values})
    by_entity: dict[str, dict[str, int]] = {}
    for row in QueueItem.objects.values("entity", "status").annotate(n=Count("id")).order_by():
        by_status[row["status"]] += row["n"]
        by_entity.setdefault(row["entity"], {})[row["status"]] = row["n"]
    return {
        "by_status": dict(by_status),
        "by_entity": dict(sorted(by_entity.items())),
        "depth": by_status[QueueItem.Status.PENDING] + by_status[QueueItem.Status.RETRY],
        "oldest_pending_age_seconds": oldest_pending_age(now),
    }


def freshness_p95_by_entity(now: datetime, *, span: timedelta = HOUR) -> dict[str, float]:
    """p95 of ERP commit minus Zoho last_modified_time per entity, over rows applied in `span`."""
    from sync.models import QueueItem

    applied = QueueItem.objects.filter(
        status=QueueItem.Status.COMPLETED, finished_at__gte=now - span, version__isnull=False
    )
    found = histograms(applied, freshness(), by="entity")
    return {entity: histogram.percentile(0.95) for entity, histogram in sorted(found.items())}


def series(name: str, since: datetime, now: datetime, *, step: timedelta = MINUTE) -> list[dict]:
    """A chart's points: one per `step` from `since` to `now`, summed over labels (counts add up
    within a step, gauges and percentiles take the step's highest point). Steps with no point are
    0 for counts and None for the others."""
    additive = name in ADDITIVE
    per_minute = (
        Metric.objects.filter(name=name, at__gte=since, at__lte=now)
        .values("at")
        .annotate(value=Sum("value"))
        .order_by("at")
    )
    start = minute_of(since)
    steps: dict[datetime, float | None] = {}
    at = start
    while at <= now:
        steps[at] = 0.0 if additive else None
        at += step
    for point in per_minute:
        key = start + step * ((point["at"] - start) // step)
        if key not in steps:
            continue
        current = steps[key]
        if additive:
            steps[key] = current + point["value"]
        else:
            steps[key] = point["value"] if current is None else max(current, point["value"])
    return [{"at": at, "value": value} for at, value in steps.items()]


def failure_rate_series(since: datetime, now: datetime, *, step: timedelta = MINUTE) -> list[dict]:
    """Failed / (applied + failed) per step; None where nothing finished."""
    applied = series(Series.APPLIED, since, now, step=step)
    failed = series(Series.FAILED, since, now, step=step)
    return [
        {"at": a["at"], "value": f["value"] / (a["value"] + f["value"]) if a["value"] + f["value"] else None}
        for a, f in zip(applied, failed, strict=True)
    ]
