"""The life of a sync run (tds_sync_runs): pending → running → completed | failed | deferred.

One run at a time per entity. Starting a run locks the entity's lock row (its full-scan cursor)
so two starters cannot both see "nothing active"; a run whose heartbeat stopped longer than
`lock_timeout_seconds` ago is stale (its process died) and is failed so the next can start and
resume from the cursor's checkpoint. A running run renews its heartbeat with a conditional update,
so a run declared stale learns it lost its lock and stops.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q

from sync.config_keys import DRAINERS, LOCK_TIMEOUT_SECONDS
from sync.models import SyncCursor, SyncLog, SyncRun
from tdscore import config

logger = logging.getLogger(__name__)
ACTIVE = (SyncRun.Status.PENDING, SyncRun.Status.RUNNING)
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class RunRefused(Exception):
    """A run that may not start: another is active for the entity, or the budget can never hold it."""


class LostLock(Exception):
    """This run was declared stale (its heartbeat looked dead) and another may have taken over."""


def lock_entity(slug: str) -> None:
    """Serialise run starts for an entity: call inside transaction.atomic().

    The entity's full-scan cursor row doubles as its lock; get_or_create is safe under the unique
    (entity, run_type) constraint, and every starter locks the same row.
    """
    cursor, _ = SyncCursor.objects.get_or_create(entity=slug, run_type=SyncRun.RunType.FULL)
    SyncCursor.objects.select_for_update().filter(pk=cursor.pk).first()


def stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=config.get(LOCK_TIMEOUT_SECONDS))


def fail_stale(slug: str, *, now: datetime) -> int:
    """Fail the entity's active runs whose heartbeat (or, never started, creation) is too old."""
    cutoff = stale_before(now)
    stale = SyncRun.objects.filter(entity=slug, status__in=ACTIVE).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    runs = list(stale)
    for run in runs:
        finish(
            run, SyncRun.Status.FAILED, now=now, error=f"stale: no heartbeat since {run.heartbeat_at or run.created_at}"
        )
    return len(runs)


def active_run(slug: str, *, now: datetime) -> SyncRun | None:
    fail_stale(slug, now=now)
    return SyncRun.objects.filter(entity=slug, status__in=ACTIVE).order_by("created_at").first()


def create(slug: str, run_type: str, *, now: datetime, trigger: str, estimated_calls: int = 0, **fields) -> SyncRun:
    """A pending run (or as `fields` say); call inside transaction.atomic() after lock_entity() and
    the overlap check."""
    return SyncRun.objects.create(
        entity=slug,
        run_type=run_type,
        trigger=trigger,
        created_at=now,
        estimated_calls=estimated_calls,
        **{"status": SyncRun.Status.PENDING, **fields},
    )


def create_deferred(
    slug: str, run_type: str, *, now: datetime, trigger: str, reason: str, estimated_calls: int, **fields
):
    run = create(
        slug,
        run_type,
        now=now,
        trigger=trigger,
        estimated_calls=estimated_calls,
        **fields,
        status=SyncRun.Status.DEFERRED,
        finished_at=now,
        error=reason,
    )
    log(run, f"deferred: {reason}", level=SyncLog.Level.WARNING)
    return run


def run_slots() -> int:
    """How many runs may be running at once in the cluster: its workers less one per drainer.

    Each drainer holds a cluster worker for good; a run takes one for as long as it reads Zoho. Were
    runs to take them all, webhooks would wait unapplied behind them (the settings' Q_CLUSTER
    `workers`, TDS_Q_WORKERS, and the `drainers` key; tds_status shows the figure).
    """
    return max(settings.Q_CLUSTER["workers"] - config.get(DRAINERS), 0)


def claim(run_id: int, *, now: datetime, slots: int | None = None) -> SyncRun | None:
    """pending → running, by whoever gets there first (conditional update; None if not pending).

    With `slots` (a run started in the cluster), only while fewer than that many runs are running:
    None then too, and the run stays pending for its task to try again later.
    """
    with transaction.atomic():
        if slots is not None:
            _serialise_claims()
            if SyncRun.objects.filter(status=SyncRun.Status.RUNNING).count() >= slots:
                return None
        taken = SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.PENDING).update(
            status=SyncRun.Status.RUNNING, started_at=now, heartbeat_at=now, locked_by=WORKER_ID
        )
    return SyncRun.objects.get(pk=run_id) if taken else None


# Any constant, the same in every process: the advisory lock under which runs take a slot.
_CLAIM_LOCK = 0x7D5C1A1


def _serialise_claims() -> None:
    """One claimer at a time counts the running runs and claims (call inside transaction.atomic()).

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a write first, which takes the
    database's one write lock before the count is read.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CLAIM_LOCK])
    else:
        SyncRun.objects.filter(pk__lt=0).update(locked_by="")


def wait(run: SyncRun, *, now: datetime, seconds: float, reason: str, since: datetime) -> SyncRun:
    """running → pending for `seconds` (Zoho asked us to wait): the run keeps its checkpoint and the
    entity, and gives its cluster worker back; sync.tasks starts it again at `resume_at`.

    The wait is cut to a third of `lock_timeout_seconds`, so a waiting run is never taken for a
    dead one. `waiting_since` keeps when the wait began, until a page is read again.
    """
    resume_at = now + timedelta(seconds=min(seconds, config.get(LOCK_TIMEOUT_SECONDS) / 3))
    waiting = {"waiting_since": since.isoformat(), "resume_at": resume_at.isoformat(), "waiting_for": reason}
    run.checkpoint = {**run.checkpoint, **waiting}
    run.error = f"waiting until {resume_at:%H:%M:%S}: {reason}"[:10_000]
    ours = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING, locked_by=run.locked_by).update(
        status=SyncRun.Status.PENDING, heartbeat_at=now, checkpoint=run.checkpoint, error=run.error
    )
    if ours:
        run.status, run.heartbeat_at = SyncRun.Status.PENDING, now
        log(run, f"gave its worker back: {run.error}", level=SyncLog.Level.WARNING)
    return SyncRun.objects.get(pk=run.pk)


def resume_at(run: SyncRun, now: datetime) -> datetime:
    """When a pending run's task should try again (a wait it is in, or soon for a free slot)."""
    from_wait = run.checkpoint.get("resume_at") if isinstance(run.checkpoint, dict) else None
    return max(datetime.fromisoformat(from_wait), now) if from_wait else now + SLOT_RETRY


# A run that found every slot taken tries again after this (django-q2 looks at schedules every ~30 s).
SLOT_RETRY = timedelta(seconds=5)


def heartbeat(run: SyncRun, *, now: datetime, **counts: int) -> None:
    """Renew the run's heartbeat and add `counts` (calls=1, fetched=200…) in one conditional update."""
    changes = {name: F(name) + value for name, value in counts.items() if value}
    alive = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING, locked_by=run.locked_by).update(
        heartbeat_at=now, **changes
    )
    if not alive:
        raise LostLock(f"run #{run.pk} is no longer ours (declared stale?)")
    run.heartbeat_at = now
    for name, value in counts.items():
        setattr(run, name, getattr(run, name) + value)


def finish(run: SyncRun, status: str, *, now: datetime, error: str = "") -> SyncRun:
    run.status = status
    run.finished_at = now
    run.duration = now - run.started_at if run.started_at else None
    run.error = error[:10_000]
    run.save(update_fields=["status", "finished_at", "duration", "error"])
    level = SyncLog.Level.INFO if status == SyncRun.Status.COMPLETED else SyncLog.Level.WARNING
    log(run, f"{run.run_type} {run.entity} {status}" + (f": {error}" if error else ""), level=level)
    return run


def give_way(slug: str, *, now: datetime, reason: str) -> SyncRun | None:
    """Defer the entity's scheduled run while it waits (pending, not claimed), so a run an operator
    starts takes its turn now; a running one is left alone. Returns the run deferred, if any."""
    with transaction.atomic():
        lock_entity(slug)
        waiting = active_run(slug, now=now)
        if waiting is None or waiting.status != SyncRun.Status.PENDING or waiting.trigger != "schedule":
            return None
        return finish(waiting, SyncRun.Status.DEFERRED, now=now, error=reason)


def fail(run: SyncRun, exc: BaseException, *, now: datetime) -> SyncRun:
    """running → failed by an unexpected error: `Type: message` on the run, the traceback kept in
    its log line and written to the process log, as the queue keeps a failed row's."""
    trace = "".join(traceback.format_exception(exc))
    logger.error("%s run #%s of %s failed", run.run_type, run.pk, run.entity, exc_info=exc)
    run.status = SyncRun.Status.FAILED
    run.finished_at = now
    run.duration = now - run.started_at if run.started_at else None
    run.error = f"{type(exc).__name__}: {exc}"[:10_000]
    run.save(update_fields=["status", "finished_at", "duration", "error"])
    log(run, f"{run.run_type} {run.entity} failed: {run.error}", level=SyncLog.Level.ERROR, traceback=trace[-8000:])
    return run


def log(run: SyncRun, message: str, *, level: str = SyncLog.Level.INFO, **context) -> None:
    SyncLog.objects.create(sync_run=run, level=level, message=message, context=context)


def cursor(slug: str, run_type: str) -> SyncCursor:
    return SyncCursor.objects.get_or_create(entity=slug, run_type=run_type)[0]


@transaction.atomic
def save_checkpoint(run: SyncRun, state: dict, *, now: datetime) -> None:
    """Keep where the run is on the run and on its cursor, so the next run of this type resumes there."""
    run.checkpoint = state
    SyncRun.objects.filter(pk=run.pk).update(checkpoint=state, heartbeat_at=now)
    row = cursor(run.entity, run.run_type)
    row.checkpoint = {**row.checkpoint, "resume": state}
    row.last_run = run
    row.last_run_at = now
    row.save(update_fields=["checkpoint", "last_run", "last_run_at"])


def ever_completed(slug: str, run_type: str) -> bool:
    """Has a run of this type ever completed for the entity (its cursor records a success)?"""
    return SyncCursor.objects.filter(entity=slug, run_type=run_type, last_success_at__isnull=False).exists()
