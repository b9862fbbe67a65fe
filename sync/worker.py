"""The drain loop: claim a batch, apply it in one transaction, finish its rows; repeat.

`process_batch` is one unit of work (tests call it directly), with a LeaseKeeper beside it that
renews the batch's lease while it applies and cuts the apply short on a stop; `drain` is the loop
around it, with a deadline, a poll interval, heartbeats and a clean stop.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone

from sync import queue, wakeup
from sync.config_keys import (
    HEARTBEAT_GRACE_SECONDS,
    HEARTBEAT_PERIOD_SECONDS,
    LOCK_TIMEOUT_SECONDS,
    QUEUE_POLL_INTERVAL_MS,
)
from sync.handlers import apply_batch
from sync.models import QueueItem, WorkerHeartbeat
from tdscore import config
from tdscore.logs import logs_as

logger = logging.getLogger(__name__)

# One generator per process for backoff jitter; tests pass their own seeded one.
_rng = random.Random()


def new_worker_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"


def process_batch(
    worker_id: str,
    now: datetime,
    *,
    due_by: datetime | None = None,
    rng: random.Random | None = None,
    tally: Counter | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Claim one batch of one entity and take every row of it to its next status.

    Returns how many rows it claimed (0: nothing due). `tally`, if given, counts the statuses the
    rows reached (completed, skipped, retry, dead_letter, lease_lost, released). The lease is kept
    while the batch is applied; once `stop` is set, an apply still running after
    FINISH_GRACE_SECONDS is interrupted and its rows released (LeaseKeeper).
    """
    queue.recover_expired_leases(now=now)
    batch = queue.claim_batch(worker_id=worker_id, now=now, due_by=due_by)
    if batch is None:
        return 0
    tally = tally if tally is not None else Counter()
    with LeaseKeeper(batch, stop=stop) as keeper:
        try:
            _apply(batch, batch.items, now=now, rng=rng or _rng, tally=tally, keeper=keeper)
        except Exception:
            if not keeper.interrupted:
                raise  # the interrupt may land on any statement, recording a failure too
    if keeper.interrupted:
        # After the keeper is done, so no cancel can reach this statement.
        tally["released"] += queue.release(batch, now=timezone.now())
        logger.info("%s: stopping; gave back the rest of lease %s", batch.worker_id, batch.token)
    return len(batch.items)


def _apply(
    batch: queue.Batch,
    items: list[QueueItem],
    *,
    now: datetime,
    rng: random.Random,
    tally: Counter,
    keeper: LeaseKeeper,
) -> None:
    """Apply `items` in one transaction; if that fails, bisect so a bad row fails alone.

    Halves, then quarters…: with one poison row in a batch of n, about 2·log2(n) transactions run and
    every other row still lands in a bulk write. An infrastructure wait (deadlock, Zoho down) is not
    a row's fault, so the whole set waits instead of being split.
    """
    if keeper.interrupted:
        return  # stopping: process_batch gives the rest back
    try:
        with transaction.atomic():
            outcomes = apply_batch(items, now=now)
            queue.finish(batch, items, outcomes, now=now)
    except queue.LeaseLost as exc:
        logger.warning("%s: %s; its work was rolled back", batch.worker_id, exc)
        tally["lease_lost"] += len(items)
        return
    except Exception as exc:
        if keeper.interrupted:
            return  # the stop cut the apply short: not the rows' failure
        kind, _ = queue.classify(exc)
        if len(items) == 1 or kind is queue.FailureKind.INFRASTRUCTURE:
            for item in items:
                tally[str(queue.record_failure(batch, item, exc, now=now, rng=rng))] += 1
            return
        middle = len(items) // 2
        _apply(batch, items[:middle], now=now, rng=rng, tally=tally, keeper=keeper)
        _apply(batch, items[middle:], now=now, rng=rng, tally=tally, keeper=keeper)
        return
    for outcome in outcomes.values():
        tally["completed" if str(outcome) == queue.APPLIED else "skipped"] += 1


# A batch normally commits well within this; one still running this long after a stop is given back.
FINISH_GRACE_SECONDS = 1.0


class LeaseKeeper:
    """Keeps a claimed batch's lease while it is applied, and cuts an apply short on a stop.

    A thread beside the apply, because the apply is one transaction whose statements may wait (on a
    lock another transaction holds, on a slow disk) longer than a lease: renewing between steps would
    come too late. It renews every third of `lock_timeout_seconds` on a connection of its own, opened
    only if the batch outlives that, so a batch of usual speed costs no query. Once `stop` is set it
    gives the apply FINISH_GRACE_SECONDS, then cancels the statement the apply is running: the
    transaction rolls back and process_batch releases the batch, so another worker takes it at once.
    """

    def __init__(self, batch: queue.Batch, *, stop: threading.Event | None):
        self.batch = batch
        self.stop = stop or threading.Event()
        self.interrupted = False
        self._period = config.get(LOCK_TIMEOUT_SECONDS) / 3
        self._applying = connections[DEFAULT_DB_ALIAS]  # this thread's: the apply's connection
        self._done = threading.Event()
        self._lock = threading.Lock()  # no cancel once the apply is over
        self._thread = threading.Thread(target=self._run, name=f"lease {batch.token}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._done.set()
        self._thread.join()

    def _run(self) -> None:
        renew_at = time.monotonic() + self._period
        cut_at = None
        try:
            while not self._done.wait(min(0.1, self._period)):
                now = time.monotonic()
                if cut_at is None and self.stop.is_set():
                    cut_at = now + FINISH_GRACE_SECONDS
                if cut_at is not None and now >= cut_at:
                    self._interrupt()
                    return
                if now >= renew_at:
                    self._renew()
                    renew_at = now + self._period
        finally:
            connections.close_all()  # this thread's connection, if it opened one

    def _renew(self) -> None:
        try:
            if not queue.renew(self.batch, now=timezone.now()):
                logger.warning("%s: lease %s was taken over", self.batch.worker_id, self.batch.token)
        except DatabaseError:
            # The apply's transaction may hold the database (SQLite: its one writer); try next period.
            logger.warning("%s: could not renew lease %s", self.batch.worker_id, self.batch.token, exc_info=True)

    def _interrupt(self) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.interrupted = True
            raw = self._applying.connection
            if raw is None:
                return
            if self._applying.vendor == "postgresql":
                raw.cancel_safe()
            else:
                raw.interrupt()


def beat(worker_id: str, *, now: datetime, rows: int) -> None:
    """Record that this worker is alive (alerts and the drainer watchdog read it)."""
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"hostname": socket.gethostname(), "pid": os.getpid(), "last_seen_at": now, "rows_processed": rows},
        create_defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": now,
            "last_seen_at": now,
            "rows_processed": rows,
        },
    )


def forget_dead_drainers(now: datetime) -> list[str]:
    """Drainers of this host whose process is gone (the cluster was killed or restarted): their
    heartbeat rows are deleted, so the watchdog need not wait for them to go stale, and the rows they
    held are put back in line at once instead of after their lease. Returns their worker ids."""
    host = socket.gethostname()
    dead = [
        worker_id
        for worker_id, pid in WorkerHeartbeat.objects.filter(hostname=host).values_list("worker_id", "pid")
        if not _alive(pid)
    ]
    if dead:
        # Their leases are as good as expired: recovery refunds the try and counts the expiry.
        QueueItem.objects.filter(status=QueueItem.Status.PROCESSING, locked_by__in=dead).update(
            locked_until=now - timedelta(microseconds=1)
        )
        queue.recover_expired_leases(now=now)
        WorkerHeartbeat.objects.filter(worker_id__in=dead).delete()
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    try:  # Linux: a killed worker not yet reaped by its parent is a zombie, not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def fresh_heartbeats(now: datetime):
    grace = config.get(HEARTBEAT_PERIOD_SECONDS) + config.get(HEARTBEAT_GRACE_SECONDS)
    return WorkerHeartbeat.objects.filter(last_seen_at__gte=now - timedelta(seconds=grace))


@logs_as(worker="worker_id")
def drain(
    deadline: datetime | None,
    *,
    worker_id: str,
    stop: threading.Event | None = None,
    once: bool = False,
    progress: Callable[[Counter], None] | None = None,
) -> Counter:
    """Apply due batches until `deadline` (None: until stopped), polling when idle.

    `once`: stop when nothing that was due at the start is left (future retries, live leases and
    paused entities stay), and let errors out so the command can exit 1. Otherwise an error is
    logged and the loop goes on after a poll interval: a database blip must not end a drainer.
    Idle, it waits for a wake-up (sync.wakeup) or the poll interval, whichever comes first.
    """
    _freeze_startup_heap()
    stop = stop or threading.Event()
    started = timezone.now()
    tally: Counter = Counter()
    last_beat: datetime | None = None
    poll_seconds = QUEUE_POLL_INTERVAL_MS.default / 1000  # until the configuration is first read
    while not stop.is_set():
        now = timezone.now()
        if deadline is not None and now >= deadline:
            break
        try:
            # Read inside the step: with the database down, the read fails into the handler below
            # (it once ended the drainer's process) and the last value read paces the wait.
            poll_seconds = config.get(QUEUE_POLL_INTERVAL_MS) / 1000
            if last_beat is None or now - last_beat >= timedelta(seconds=config.get(HEARTBEAT_PERIOD_SECONDS)):
                beat(worker_id, now=now, rows=sum(tally.values()))
                last_beat = now
            found = process_batch(worker_id, now, due_by=started if once else None, tally=tally, stop=stop)
        except Exception:
            if once:
                raise
            logger.exception("%s: drain step failed; trying again after a poll interval", worker_id)
            close_old_connections()
            found = 0
        if found and progress:
            progress(tally)
        if not found:
            if once:
                break
            # Woken when work commits (sync.wakeup); the poll interval is the backstop.
            wakeup.wait(poll_seconds, stop=stop)
    try:
        beat(worker_id, now=timezone.now(), rows=sum(tally.values()))
    except DatabaseError:
        if once:
            raise
        # The last beat of a drain that ends while the database is away: the next drain beats.
        logger.warning("%s: could not record the drain's end", worker_id, exc_info=True)
    return tally


_heap_frozen = False


def _freeze_startup_heap() -> None:
    """Hide what the process holds before its first drain (Django, every module: ~115,000 objects)
    from Python's cyclic collector, once per process.

    A batch makes thousands of containers (payloads, instances, audit rows) that live until it
    commits, so they outlast the young generations and, every few batches, set off a collection of
    the oldest one, which walked that whole heap: 13-24 % of an invoice drainer's CPU (gc callbacks
    over a drain of 1,000 invoices), landing mostly inside the claim's orjson.loads. Frozen,
    those objects are still freed by their reference counts; only a reference cycle among them is
    kept, which a process's furniture does not make.
    """
    global _heap_frozen
    if not _heap_frozen:
        gc.freeze()
        _heap_frozen = True


@contextmanager
def stop_on_signals(*signals: signal.Signals) -> Iterator[threading.Event]:
    """An event set by `signals` (default SIGTERM and SIGINT), so the loop finishes or releases its
    batch and returns cleanly."""
    stop = threading.Event()
    signals = signals or (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# Set in a django-q2 worker process once the cluster is told to stop (listen_for_cluster_stop).
cluster_stopping = threading.Event()


def listen_for_cluster_stop(**kwargs) -> None:
    """django-q2 `post_spawn` receiver, run in each new cluster worker process.

    django-q2 stops a cluster by putting one STOP in the task queue per worker and waiting for each
    to take it: a busy worker is neither signalled nor interrupted, so a drain task used to hold the
    stop up until its deadline (60 s). A terminal's Ctrl-C reaches the cluster's whole process group
    with SIGINT (tdscore.devserver sends the same); the sentinel and its workers ignore it by
    default. Here a worker notes it, for its remaining life, so a running drain stops and a drain
    task handed to it afterwards returns at once (sync.tasks.drain_task). SIGTERM stays django-q2's
    "timed out, die" for a worker, whose default action must remain.
    """
    if multiprocessing.parent_process() is None:
        return  # django-q2's sync mode runs the worker loop inside the caller: not a cluster worker
    signal.signal(signal.SIGINT, lambda signum, frame: cluster_stopping.set())
