"""django-q2 entry points, named by dotted path.

Each is thin and calls one verb function. The sync app's django-q2 edge: the one place here that
enqueues tasks (sync.apps also hooks sync.worker into django-q2's worker start).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from sync import entities, healing, pull, reconcile, retention, run_lifecycle, schedules, worker
from sync.config_keys import DRAINERS, RECONCILIATION_ENABLED
from sync.models import SyncRun, WorkerHeartbeat
from tdscore import config

logger = logging.getLogger(__name__)


def drain_task(worker_id: str | None = None) -> int:
    """Drain until TDS_DRAIN_DEADLINE_SECONDS (below the cluster's task timeout), then hand over.

    The successor is enqueued after commit under the same worker id, so one drainer is one row in
    tds_worker_heartbeats however many tasks it spans. A webhook waits at most about one poll.
    When the cluster is stopping (sync.worker.listen_for_cluster_stop) the drain finishes or
    releases its batch and returns without a successor: one left in the broker would run beside
    those the watchdog starts when the cluster is back.

    A database outage must not break the chain: the drain itself waits it out, and the check at the
    start and the hand-over at the end are tried again until the database answers, for as long as
    the cluster's task timeout leaves (HAND_OVER_MARGIN_SECONDS before it). Only a longer outage
    leaves the restart to the watchdog.
    """
    began = time.monotonic()
    must_end_by = began + settings.Q_CLUSTER["timeout"] - HAND_OVER_MARGIN_SECONDS
    deadline = timezone.now() + timedelta(seconds=settings.TDS_DRAIN_DEADLINE_SECONDS)
    if worker_id and not _while_database_away(
        lambda: WorkerHeartbeat.objects.filter(worker_id=worker_id).exists(), until=must_end_by, given_up=False
    ):
        return 0  # a successor left from a killed cluster: the drainer was forgotten and replaced
    worker_id = worker_id or worker.new_worker_id("drainer")
    tally = worker.drain(deadline, worker_id=worker_id, stop=worker.cluster_stopping)
    if not worker.cluster_stopping.is_set():
        # on_commit asks the connection whether it is in autocommit: that too fails while the
        # database is away, so it is inside the retried step.
        _while_database_away(
            lambda: transaction.on_commit(lambda: _start_drainer(worker_id)), until=must_end_by, given_up=None
        )
    return sum(tally.values())


# The hand-over gives up this long before the cluster's task timeout would kill the task.
HAND_OVER_MARGIN_SECONDS = 5.0
HAND_OVER_RETRY_SECONDS = 1.0
T = TypeVar("T")


def _while_database_away(step: Callable[[], T], *, until: float, given_up: T) -> T:
    """`step`, tried again every HAND_OVER_RETRY_SECONDS while it fails (the database, or the
    broker on it, away) until the monotonic time `until` or the cluster stops; `given_up` then."""
    while True:
        try:
            return step()
        except Exception:
            if worker.cluster_stopping.is_set() or time.monotonic() + HAND_OVER_RETRY_SECONDS > until:
                logger.exception("drainer hand-over failed; the watchdog starts a new drainer within a minute")
                return given_up
            logger.warning("drainer hand-over waits for the database", exc_info=True)
            close_old_connections()
            worker.cluster_stopping.wait(HAND_OVER_RETRY_SECONDS)


def ensure_drainers() -> int:
    """Start drainers until `drainers` heartbeats are fresh (the watchdog schedule calls this, and
    every cluster worker as it starts).

    A drainer of this host whose process is gone (the cluster was killed or restarted) is forgotten
    at once (worker.forget_dead_drainers), so a starting cluster starts its drainers straight away
    rather than on the watchdog's next minute. Elsewhere, a drainer whose chain broke stops beating,
    its heartbeat goes stale and a new one is started within a minute. A new drainer's heartbeat is
    written at once, and starters take turns (run_lifecycle's lock), so none is started twice.
    """
    now = timezone.now()
    with transaction.atomic():
        _one_starter_at_a_time()
        worker.forget_dead_drainers(now)
        missing = max(config.get(DRAINERS) - worker.fresh_heartbeats(now).count(), 0)
        for _ in range(missing):
            worker_id = worker.new_worker_id("drainer")
            worker.beat(worker_id, now=now, rows=0)
            transaction.on_commit(lambda worker_id=worker_id: _start_drainer(worker_id))
    return missing


# Any constant, the same in every process: the advisory lock drainer starters take turns under.
_STARTER_LOCK = 0x7D5D4A1


def _one_starter_at_a_time() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_STARTER_LOCK])
    else:  # SQLite: a write first takes the one write lock before anything is counted
        WorkerHeartbeat.objects.filter(pk__lt=0).update(rows_processed=0)


def start_drainers_on_spawn(**kwargs) -> None:
    """django-q2 `post_spawn` receiver: a cluster worker that starts sees that the drainers run."""
    if multiprocessing.parent_process() is None:
        return  # django-q2's sync mode runs tasks inside the caller: not a cluster starting
    try:
        ensure_drainers()
    except Exception:
        # The database may not be up yet: the watchdog tries again within a minute.
        logger.exception("could not start the drainers as the worker started")
    finally:
        connections.close_all()


def _start_drainer(worker_id: str) -> None:
    async_task("sync.tasks.drain_task", worker_id, task_name=f"drain {worker_id}"[:100])


# --- Pull runs and reconciliation (sync.pull, sync.reconcile) ----------------------------------
# A run checkpoints every page and is guarded by its heartbeat, not by the cluster's timeout: a long
# run gets its own timeout, and a second delivery of the task finds the run claimed and returns.
RUN_TASK_TIMEOUT_SECONDS = 6 * 3600


def pull_task(run_id: int) -> str:
    # A stopping cluster stops the run after its page (checkpoint kept: the next run resumes there),
    # or in a wait for Zoho's minute budget: a stop is not held until the minute turns.
    run = pull.execute(
        run_id, should_stop=worker.cluster_stopping.is_set, sleep=_sleep_unless_stopping, in_cluster=True
    )
    _again_if_waiting(run, "sync.tasks.pull_task", (run_id,))
    return run.status


def _sleep_unless_stopping(seconds: float) -> None:
    if worker.cluster_stopping.wait(seconds):
        raise pull.Stopped("the cluster stopped while the run waited for Zoho; the next run resumes from its last page")


def reconcile_task(run_id: int, repair: bool = True) -> str:
    run = reconcile.execute(run_id, repair=repair, in_cluster=True)
    _again_if_waiting(run, "sync.tasks.reconcile_task", (run_id, repair))
    return run.status


def _again_if_waiting(run: SyncRun, func: str, args: tuple) -> None:
    """A run still pending gave its worker back (Zoho asked to wait, or no slot was free): the
    task runs again when it is due, by a one-off schedule, not by sleeping in a worker."""
    if run.status != SyncRun.Status.PENDING:
        return
    now = timezone.now()
    schedule(
        func,
        *args,
        name=f"resume {run.run_type} {run.entity} #{run.pk} {now:%H:%M:%S.%f}"[:100],
        schedule_type=Schedule.ONCE,  # deleted by django-q2 once it has run
        next_run=run_lifecycle.resume_at(run, now),
        q_options={"timeout": RUN_TASK_TIMEOUT_SECONDS},
    )


def launch_runs(runs, *, repair: bool = True) -> None:
    """Run pending runs in the cluster, after the transaction that recorded them commits."""
    for run in runs:
        if run.status != SyncRun.Status.PENDING:
            continue
        if run.run_type == SyncRun.RunType.RECONCILIATION:
            args, func = (run.pk, repair), "sync.tasks.reconcile_task"
        else:
            args, func = (run.pk,), "sync.tasks.pull_task"
        name = f"{run.run_type} {run.entity} #{run.pk}"[:100]
        transaction.on_commit(
            lambda func=func, args=args, name=name: async_task(
                func, *args, task_name=name, timeout=RUN_TASK_TIMEOUT_SECONDS
            )
        )


def scheduled_pull(mode: str, slugs: list[str] | None = None, attempt: int = 0) -> list[int]:
    """A schedule tick: start a run per scheduled entity (each takes its lock) and launch them."""
    started, refused = pull.start_runs(
        slugs or schedules.scheduled_slugs(mode), mode, now=timezone.now(), trigger="schedule"
    )
    launch_runs(started)
    if mode == "full":  # daily: a skipped tick would be a day lost (the frequent ones just wait for the next)
        _retry_overlaps("sync.tasks.scheduled_pull", (mode,), refused, attempt)
    return [run.pk for run in started]


def scheduled_reconcile(slugs: list[str] | None = None, attempt: int = 0) -> list[int]:
    if not config.get(RECONCILIATION_ENABLED):
        return []
    now = timezone.now()
    started, refused = pull.start_runs(
        slugs or list(entities.ENTITIES), SyncRun.RunType.RECONCILIATION, now=now, trigger="schedule"
    )
    launch_runs(started, repair=True)
    _retry_overlaps("sync.tasks.scheduled_reconcile", (), refused, attempt)
    return [run.pk for run in started]


# The nightly reconciliation and the daily full pull both default to 02:00:
# whichever starts an entity second is refused for overlap, and tries again a little later.
OVERLAP_RETRY = timedelta(minutes=15)
OVERLAP_RETRIES = 8


def _retry_overlaps(func: str, args: tuple, refused: dict[str, str], attempt: int) -> None:
    waiting = sorted(slug for slug, reason in refused.items() if reason.startswith("overlap"))
    if not waiting or attempt >= OVERLAP_RETRIES:
        return
    now = timezone.now()
    schedule(
        func,
        *args,
        waiting,
        attempt + 1,
        name=f"retry {func.rsplit('.', 1)[-1]} {now:%Y-%m-%d %H:%M:%S.%f}",
        schedule_type=Schedule.ONCE,  # deleted by django-q2 once it has run
        next_run=now + OVERLAP_RETRY,
    )


# --- Operations: healing and retention -----------------------------------------------------------


def heal_task() -> dict[str, int]:
    return {str(problem): count for problem, count in healing.heal(now=timezone.now()).counts.items()}


def cleanup_task() -> dict[str, int]:
    return retention.cleanup(now=timezone.now()).counts


def ensure_schedules() -> list[str]:
    """Re-install the schedules when a schedule key or the budget's plan changed them (every minute)."""
    return schedules.ensure_installed(timezone.now())
