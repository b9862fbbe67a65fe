"""django-q2 entry points, named by dotted path.

Each is thin and calls one verb function. The sync app's django-q2 edge: the one place here that
enqueues tasks (sync.apps also hooks sync.worker into django-q2's worker start).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from sync import entities, healing, pull, reconcile, retention, schedules, worker
from sync.config_keys import DRAINERS, RECONCILIATION_ENABLED
from sync.models import SyncRun
from tdscore import config


def drain_task(worker_id: str | None = None) -> int:
    """Drain until TDS_DRAIN_DEADLINE_SECONDS (below the cluster's task timeout), then hand over.

    The successor is enqueued after commit under the same worker id, so one drainer is one row in
    tds_worker_heartbeats however many tasks it spans. A webhook waits at most about one poll.
    When the cluster is stopping (sync.worker.listen_for_cluster_stop) the drain finishes or
    releases its batch and returns without a successor: one left in the broker would run beside
    those the watchdog starts when the cluster is back.
    """
    worker_id = worker_id or worker.new_worker_id("drainer")
    deadline = timezone.now() + timedelta(seconds=settings.TDS_DRAIN_DEADLINE_SECONDS)
    tally = worker.drain(deadline, worker_id=worker_id, stop=worker.cluster_stopping)
    if not worker.cluster_stopping.is_set():
        transaction.on_commit(lambda: _start_drainer(worker_id))
    return sum(tally.values())


def ensure_drainers() -> int:
    """Start drainers until `drainers` heartbeats are fresh (the watchdog schedule calls this).

    A drainer whose chain broke (the cluster restarted, a task was killed) stops beating, so its
    heartbeat goes stale and a new one is started within a minute. A new drainer's heartbeat is
    written at once, so the next run of the watchdog does not start it twice.
    """
    now = timezone.now()
    missing = config.get(DRAINERS) - worker.fresh_heartbeats(now).count()
    for _ in range(max(missing, 0)):
        worker_id = worker.new_worker_id("drainer")
        worker.beat(worker_id, now=now, rows=0)
        transaction.on_commit(lambda worker_id=worker_id: _start_drainer(worker_id))
    return max(missing, 0)


def _start_drainer(worker_id: str) -> None:
    async_task("sync.tasks.drain_task", worker_id, task_name=f"drain {worker_id}"[:100])


# --- Pull runs and reconciliation (sync.pull, sync.reconcile) ----------------------------------
# A run checkpoints every page and is guarded by its heartbeat, not by the cluster's timeout: a long
# run gets its own timeout, and a second delivery of the task finds the run claimed and returns.
RUN_TASK_TIMEOUT_SECONDS = 6 * 3600


def pull_task(run_id: int) -> str:
    # A stopping cluster stops the run after its page (checkpoint kept: the next run resumes there),
    # or in a wait for Zoho's minute budget: a stop is not held until the minute turns.
    return pull.execute(run_id, should_stop=worker.cluster_stopping.is_set, sleep=_sleep_unless_stopping).status


def _sleep_unless_stopping(seconds: float) -> None:
    if worker.cluster_stopping.wait(seconds):
        raise pull.Stopped("the cluster stopped while the run waited for Zoho; the next run resumes from its last page")


def reconcile_task(run_id: int, repair: bool = True) -> str:
    return reconcile.execute(run_id, repair=repair).status


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
