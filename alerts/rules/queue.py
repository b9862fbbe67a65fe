"""The queue: its backlog, the lag of its oldest due row and of the pull cursors, whether it moves, and
rows or runs stuck in processing."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Max

from alerts.config_keys import STUCK_PROCESSING_MINUTES, SYNC_LAG_THRESHOLD_MINUTES
from alerts.rules.core import Finding, Liveness, Severity, excerpt, liveness, minutes, rule
from sync.config_keys import (
    INCREMENTAL_SYNC_INTERVAL_MINUTES,
    PAUSED_ENTITIES,
    QUEUE_BACKLOG_THRESHOLD,
    QUEUE_PROGRESS_GRACE_SECONDS,
    QUEUE_PROGRESS_PERIOD_SECONDS,
)
from sync.models import QueueItem, SyncCursor, SyncRun
from sync.worker import fresh_heartbeats
from tdscore import config


def oldest_due(now: datetime) -> QueueItem | None:
    """The waiting row due longest ago, outside paused entities (their rows wait by design).

    Read down the claim index (tds_queue_due) one priority at a time: each probe is the first
    entry of that priority, so a backlog of any size costs one probe per priority in use.
    """
    waiting = QueueItem.objects.filter(status__in=QueueItem.WAITING, next_attempt_at__lte=now)
    paused = config.get(PAUSED_ENTITIES)
    if paused:
        waiting = waiting.exclude(entity__in=paused)
    oldest, below = None, None
    while True:
        probe = waiting if below is None else waiting.filter(priority__lt=below)
        row = probe.order_by("-priority", "next_attempt_at", "id").first()
        if row is None:
            return oldest
        if oldest is None or row.next_attempt_at < oldest.next_attempt_at:
            oldest = row
        below = row.priority


@rule("queue_backlog")
def queue_backlog(now: datetime) -> list[Finding]:
    threshold = config.get(QUEUE_BACKLOG_THRESHOLD)
    # GROUP BY entity over the waiting rows only (tds_queue_status_entity).
    by_entity = dict(
        QueueItem.objects.filter(status__in=QueueItem.WAITING)
        .values_list("entity")
        .annotate(n=Count("id"))
        .values_list("entity", "n")
    )
    waiting = sum(by_entity.values())
    if waiting < threshold:
        return []
    biggest = max(by_entity, key=by_entity.get)
    return [
        Finding(
            subject="all",
            severity=Severity.WARNING,
            title=f"Queue backlog: {waiting:,} rows waiting",
            value=waiting,
            threshold=threshold,
            context={"entity": biggest, "by_entity": by_entity, "reason": "more rows waiting than the workers apply"},
        )
    ]


@rule("sync_lag")
def sync_lag(now: datetime) -> list[Finding]:
    """The oldest due row's wait, and each incremental cursor's last success, against the lag threshold.

    A cursor is expected to succeed every `incremental_sync_interval_minutes`; the lag threshold is the
    grace on top of that, so an hourly pull is not "late" for 45 minutes of every hour.
    """
    lag = timedelta(minutes=config.get(SYNC_LAG_THRESHOLD_MINUTES))
    findings = []
    row = oldest_due(now)
    if row is not None and now - row.next_attempt_at >= lag:
        waited = minutes(now - row.next_attempt_at)
        findings.append(
            Finding(
                subject="queue",
                severity=Severity.WARNING,
                title=f"Oldest due row has waited {waited} min",
                value=waited,
                threshold=minutes(lag),
                context={"entity": row.entity, "object_ids": [row.object_id], "excerpt": excerpt(row.payload)},
            )
        )
    expected = timedelta(minutes=config.get(INCREMENTAL_SYNC_INTERVAL_MINUTES)) + lag
    cursors = SyncCursor.objects.filter(run_type=SyncRun.RunType.INCREMENTAL)
    for cursor in cursors:
        since = cursor.last_success_at or cursor.last_run_at
        if since is None or now - since < expected:
            continue
        findings.append(
            Finding(
                subject=f"cursor:{cursor.entity}",
                severity=Severity.WARNING,
                title=f"{cursor.entity}: no successful incremental pull for {minutes(now - since)} min",
                value=minutes(now - since),
                threshold=minutes(expected),
                context={"entity": cursor.entity, "reason": "pull not succeeding", "watermark": str(cursor.watermark)},
            )
        )
    return findings


@rule("queue_stalled")
def queue_stalled(now: datetime) -> list[Finding]:
    """Rows due for longer than period + grace, nothing finished meanwhile, and workers say they are alive."""
    period, grace = config.get(QUEUE_PROGRESS_PERIOD_SECONDS), config.get(QUEUE_PROGRESS_GRACE_SECONDS)
    window = timedelta(seconds=period + grace)
    stuck = oldest_due(now - window)
    if stuck is None or not fresh_heartbeats(now).exists():
        return []
    last = QueueItem.objects.filter(finished_at__isnull=False).aggregate(at=Max("finished_at"))["at"]
    age = now - (last or stuck.next_attempt_at)
    if liveness(age, period=period, grace=grace) is not Liveness.DOWN:
        return []
    return [
        Finding(
            subject="all",
            severity=Severity.ERROR,
            title=f"Queue not moving: nothing finished for {minutes(age)} min while workers report alive",
            value=minutes(age),
            threshold=minutes(window),
            context={
                "entity": stuck.entity,
                "object_ids": [stuck.object_id],
                "reason": "workers alive but not applying",
            },
        )
    ]


@rule("stuck_processing")
def stuck_processing(now: datetime) -> list[Finding]:
    """Leases expired long ago (heal is not recovering them) and runs whose heartbeat stopped."""
    after = timedelta(minutes=config.get(STUCK_PROCESSING_MINUTES))
    findings = []
    leases = QueueItem.objects.filter(
        status=QueueItem.Status.PROCESSING, locked_until__lte=now - after
    )  # tds_queue_leases
    count = leases.count()
    if count:
        sample = list(leases.values_list("entity", "object_id")[:5])
        findings.append(
            Finding(
                subject="queue",
                severity=Severity.ERROR,
                title=f"{count} queue rows stuck in processing (lease expired over {minutes(after)} min ago)",
                value=count,
                threshold=1,
                context={"entity": sample[0][0], "object_ids": [o for _, o in sample], "reason": "lease expired"},
            )
        )
    runs = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, heartbeat_at__lte=now - after)
    for run in runs[:20]:
        findings.append(
            Finding(
                subject=f"run:{run.pk}",
                severity=Severity.ERROR,
                title=f"{run.run_type} run #{run.pk} of {run.entity} silent for {minutes(now - run.heartbeat_at)} min",
                value=minutes(now - run.heartbeat_at),
                threshold=minutes(after),
                context={"entity": run.entity, "run_id": run.pk, "reason": "run heartbeat stopped"},
            )
        )
    return findings
