"""The figures the operations console shows, read the same way by the API and the HTML dashboard.

Window figures (received, applied, failed over an hour or a day, latency percentiles) come from the
per-minute and hourly roll-ups in tds_metrics (monitoring.rollups) plus a live count of the minutes not yet rolled
up, so they are current to the second and cost a few index reads however many queue rows there are.
Live figures (queue depth, oldest pending, open dead letters, alerts, Zoho budget) are indexed counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, Sum

from monitoring import registry
from monitoring.rollups import (
    COUNTED,
    HOUR,
    HOURLY,
    MINUTE,
    Series,
    Tally,
    hour_of,
    lag_histograms,
    last_rolled_minute,
    measure,
    minute_of,
)
from sync import budget, parents
from sync.models import DeadLetter, QueueItem
from tdscore.models import Metric

DAY = timedelta(days=1)
# Series whose per-minute points add up over a longer step; the others (gauges, percentiles) take
# the step's highest point, which is what an operator looks for on a chart of queue depth or p95.
ADDITIVE = {*COUNTED, *HOURLY.values(), Series.ZOHO_CALLS}


def _stored(spans: list[tuple[datetime, datetime, bool]]) -> Tally:
    """Sum the stored points of each span [start, end): per hour where `hourly`, else per minute.
    One query for all spans, grouped in the database, so a day is a few thousand index entries."""
    tally = Tally()
    condition = Q(pk__in=[])
    for start, end, hourly in spans:
        names = list(HOURLY.values()) if hourly else list(HOURLY)
        condition |= Q(name__in=names, at__gte=start, at__lt=end)
    rows = Metric.objects.filter(condition).values("name", "labels").annotate(total=Sum("value")).order_by()
    minute_name = {hourly: minute for minute, hourly in HOURLY.items()}
    for row in rows:
        name, labels = minute_name.get(row["name"], row["name"]), row["labels"]
        if name == Series.LATENCY_SUM:
            tally.latency.sum_seconds += row["total"]
        elif name == Series.LATENCY_BUCKET:
            tally.latency.buckets[labels.get("le", "")] += int(row["total"])
        else:
            tally.counts[name][labels.get("entity", "")] += int(row["total"])
    return tally


def _ceil(at: datetime, unit: timedelta) -> datetime:
    down = minute_of(at) if unit == MINUTE else hour_of(at)
    return down if down == at else down + unit


def _spans(first: datetime, edge: datetime) -> list[tuple[datetime, datetime, bool]]:
    hours_from, hours_to = _ceil(first, HOUR), hour_of(edge)
    if hours_from < hours_to:
        return [(first, hours_from, False), (hours_from, hours_to, True), (hours_to, edge, False)]
    return [(first, edge, False)]


def windows(now: datetime, spans: list[timedelta]) -> list[Tally]:
    """What happened in the last `span` up to `now`, for each span: from its first whole minute to
    the last minute rolled up, read from tds_metrics by hours and minutes; after that, counted live
    from the tables, once for all the spans."""
    firsts = [_ceil(now - span, MINUTE) for span in spans]
    last = last_rolled_minute(since=min(firsts))
    if last is None:
        return [measure(first, now) for first in firsts]
    edge = last + MINUTE
    live = measure(edge, now)
    return [measure(first, now) if first >= edge else _stored(_spans(first, edge)).add(live) for first in firsts]


def window(since: datetime, now: datetime) -> Tally:
    return windows(now, [now - since])[0]


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
    oldest = QueueItem.objects.filter(status=QueueItem.Status.PENDING).aggregate(at=Min("next_attempt_at"))["at"]
    return max((now - oldest).total_seconds(), 0.0) if oldest else None


def queue_depth() -> int:
    return QueueItem.objects.filter(status__in=QueueItem.WAITING).count()


def dlq_size() -> int:
    return DeadLetter.objects.unresolved().count()


def parents_waiting() -> int:
    """Parents that stored rows reference and that are not stored yet (their references are empty)."""
    return parents.waiting_count()


def zoho_calls(now: datetime) -> dict:
    status = budget.status(now)
    return {"calls_today": status.calls_today, "daily_cap": status.daily_cap, "remaining_today": status.remaining_today}


def overview(now: datetime) -> dict:
    """The tiles: the last hour and day, latency, freshness per entity (last hour), queue, dead letters,
    alerts and the Zoho budget."""
    hour, day = windows(now, [HOUR, DAY])
    return {
        "generated_at": now,
        "last_hour": _summary(hour),
        "last_day": _summary(day),
        "queue_depth": queue_depth(),
        "oldest_pending_age_seconds": oldest_pending_age(now),
        "dlq_size": dlq_size(),
        "parents_waiting": parents_waiting(),
        "freshness": freshness_by_entity(now),
        **{name: figure(now) for name, figure in registry.figures.items()},
        "zoho": zoho_calls(now),
    }


def active_rows() -> list[tuple[str, str, int]]:
    """(status, entity, rows) of the unfinished statuses, read exactly: the index on (status,
    entity) holds few of them, where a count of every status would read the whole table."""
    active = [QueueItem.Status.PENDING, QueueItem.Status.RETRY, QueueItem.Status.PROCESSING]
    rows = QueueItem.objects.filter(status__in=active).values_list("status", "entity").annotate(n=Count("id"))
    return list(rows.order_by("status", "entity"))


FINISHED_AS = {Series.APPLIED: "completed", Series.SKIPPED: "skipped", Series.FAILED: "dead_letter"}


def queue_stats(now: datetime) -> dict:
    """Queue rows by status, and by entity and status; the depth and the oldest pending age.

    Pending, retry and processing rows are counted as they are now; completed, skipped and
    dead_letter are the rows that finished so in the last 24 hours (from the roll-ups), which is
    what an operator compares, rather than whatever retention has not yet deleted."""
    by_status = Counter({status: 0 for status in QueueItem.Status.values})
    by_entity: dict[str, dict[str, int]] = {}
    finished = window(now - DAY, now)
    rows = active_rows() + [
        (status, entity, n) for series, status in FINISHED_AS.items() for entity, n in finished.counts[series].items()
    ]
    for status, entity, n in rows:
        by_status[status] += n
        by_entity.setdefault(entity, {})[status] = n
    return {
        "by_status": dict(by_status),
        "by_entity": dict(sorted(by_entity.items())),
        "finished_since": now - DAY,
        "depth": by_status[QueueItem.Status.PENDING] + by_status[QueueItem.Status.RETRY],
        "oldest_pending_age_seconds": oldest_pending_age(now),
        "parents_waiting": parents_waiting(),
    }


def freshness_by_entity(now: datetime, *, span: timedelta = HOUR) -> dict[str, dict[str, dict]]:
    """Per entity, the p50 and p95 of each `Lag` over the rows applied in the last `span`:
    {entity: {lag: {"p50_seconds", "p95_seconds", "count"}}}, a lag left out where nothing counted.

    `since_modified` (ERP commit minus Zoho's last_modified_time) counts live changes only; old
    records a pull brought are `backfill`, so a first full pull does not read as days stale."""
    found: dict[str, dict[str, dict]] = {}
    for lag, per_entity in lag_histograms(QueueItem.objects.filter(finished_at__gte=now - span)).items():
        for entity, histogram in per_entity.items():
            found.setdefault(entity, {})[str(lag)] = {
                "p50_seconds": histogram.percentile(0.5),
                "p95_seconds": histogram.percentile(0.95),
                "count": histogram.count,
            }
    return dict(sorted(found.items()))


def series(name: str, since: datetime, now: datetime, *, step: timedelta = MINUTE) -> list[dict]:
    """A chart's points: one per `step` from `since` to `now`, summed over labels (counts add up
    within a step, gauges and percentiles take the step's highest point). Steps with no point are
    0 for counts and None for the others."""
    return many_series([name], since, now, step=step)[name]


def many_series(names: list[str], since: datetime, now: datetime, *, step: timedelta = MINUTE) -> dict[str, list]:
    """`series` of several names in one query (hourly names want a step of whole hours)."""
    start = minute_of(since) if step < HOUR else hour_of(since)
    per_minute = (
        Metric.objects.filter(name__in=names, at__gte=start, at__lte=now)
        .values("name", "at")
        .annotate(value=Sum("value"))
        .order_by()
    )
    steps = {name: {} for name in names}
    for name in names:
        at = start
        while at <= now:
            steps[name][at] = 0.0 if name in ADDITIVE else None
            at += step
    for point in per_minute:
        name, key = point["name"], start + step * ((point["at"] - start) // step)
        current = steps[name].get(key, 0.0)
        if key not in steps[name]:
            continue
        if name in ADDITIVE:
            steps[name][key] = current + point["value"]
        else:
            steps[name][key] = point["value"] if current is None else max(current, point["value"])
    return {name: [{"at": at, "value": value} for at, value in points.items()] for name, points in steps.items()}


def failure_rate_series(since: datetime, now: datetime, *, step: timedelta = MINUTE) -> list[dict]:
    """Failed / (applied + failed) per step; None where nothing finished."""
    found = many_series([Series.APPLIED, Series.FAILED], since, now, step=step)
    applied, failed = found[Series.APPLIED], found[Series.FAILED]
    return [
        {"at": a["at"], "value": f["value"] / (a["value"] + f["value"]) if a["value"] + f["value"] else None}
        for a, f in zip(applied, failed, strict=True)
    ]
