"""The drain loop: claim a batch, apply it in one transaction, finish its rows; repeat (DESIGN "Drainers").

`process_batch` is one unit of work (tests call it directly); `drain` is the loop around it, with
a deadline, a poll interval, heartbeats and a clean stop.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import close_old_connections, transaction
from django.utils import timezone

from sync import queue
from sync.models import QueueItem, WorkerHeartbeat
from tdscore import config
from tdscore.logging import logs_as

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
) -> int:
    """Claim one batch of one entity and take every row of it to its next status.

    Returns how many rows it claimed (0: nothing due). `tally`, if given, counts the statuses the
    rows reached (completed, skipped, retry, dead_letter, lease_lost).
    """
    queue.recover_expired_leases(now=now)
    batch = queue.claim_batch(worker_id=worker_id, now=now, due_by=due_by)
    if batch is None:
        return 0
    _apply(batch, batch.items, now=now, rng=rng or _rng, tally=tally if tally is not None else Counter())
    return len(batch.items)


def _apply(batch: queue.Batch, items: list[QueueItem], *, now: datetime, rng: random.Random, tally: Counter) -> None:
    """Apply `items` in one transaction; if that fails, bisect so a bad row fails alone.

    Halves, then quarters…: with one poison row in a batch of n, about 2·log2(n) transactions run and
    every other row still lands in a bulk write. An infrastructure wait (deadlock, Zoho down) is not
    a row's fault, so the whole set waits instead of being split.
    """
    from sync.handlers import apply_batch  # the handlers import the ERP models; keep this module light

    try:
        with transaction.atomic():
            outcomes = apply_batch(items, now=now)
            queue.finish(batch, items, outcomes, now=now)
    except queue.LeaseLost as exc:
        logger.warning("%s: %s; its work was rolled back", batch.worker_id, exc)
        tally["lease_lost"] += len(items)
        return
    except Exception as exc:
        kind, _ = queue.classify(exc)
        if len(items) == 1 or kind is queue.FailureKind.INFRASTRUCTURE:
            for item in items:
                tally[str(queue.record_failure(batch, item, exc, now=now, rng=rng))] += 1
            return
        # Bisecting takes a while on a big batch: keep the lease ours meanwhile.
        queue.renew(batch, now=timezone.now())
        middle = len(items) // 2
        _apply(batch, items[:middle], now=now, rng=rng, tally=tally)
        _apply(batch, items[middle:], now=now, rng=rng, tally=tally)
        return
    for outcome in outcomes.values():
        tally["completed" if str(outcome) == queue.APPLIED else "skipped"] += 1


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


def fresh_heartbeats(now: datetime):
    grace = config.get("heartbeat_period_seconds") + config.get("heartbeat_grace_seconds")
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
    """
    stop = stop or threading.Event()
    started = timezone.now()
    tally: Counter = Counter()
    last_beat: datetime | None = None
    while not stop.is_set():
        now = timezone.now()
        if deadline is not None and now >= deadline:
            break
        try:
            if last_beat is None or now - last_beat >= timedelta(seconds=config.get("heartbeat_period_seconds")):
                beat(worker_id, now=now, rows=sum(tally.values()))
                last_beat = now
            found = process_batch(worker_id, now, due_by=started if once else None, tally=tally)
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
            stop.wait(config.get("queue_poll_interval_ms") / 1000)
    beat(worker_id, now=timezone.now(), rows=sum(tally.values()))
    return tally


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so the loop finishes its batch and returns cleanly."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
