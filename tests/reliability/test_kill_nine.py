"""kill -9 under fire: a real qcluster of two workers drains a few thousand queued changes while
newer versions of the same objects keep arriving; one drainer is killed with -9 at a random moment,
later the whole cluster (its process group), which is then started again. Afterwards every queued
row is finished, each applied exactly once (an audit row per completed row, no version applied
twice), and every object holds the newest version sent. The random moments come from a seeded
generator, printed with the counts when the test fails, so a failing run can be replayed."""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from erp.models import Product
from sync import queue
from sync.config_keys import (
    BATCH_SIZE,
    DRAINERS,
    HEARTBEAT_PERIOD_SECONDS,
    LOCK_TIMEOUT_SECONDS,
    QUEUE_POLL_INTERVAL_MS,
)
from sync.models import AuditTrail, DeadLetter, QueueItem, WorkerHeartbeat
from tdscore import config
from tests.queue.test_drain_survives_outage import drainer_beats, start_cluster, stop, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# A new seed each run, printed when the test fails: set SEED to it here to replay that run.
SEED = random.SystemRandom().randrange(1, 2**31)
OBJECTS = 4000  # the backlog: one version each, queued before the cluster starts
WAVE_EVERY_SECONDS = 0.1
WAVE_OBJECTS = 40  # newer versions of this many objects every wave: ~400 rows a second
LEASE_SECONDS = 2
DRAINED_WITHIN_SECONDS = 20  # after the last wave; the whole test stays well under 40 s


class Sender:
    """The changes the test queues, through the queue's bulk enqueue, and the newest of each object."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.base = timezone.now() - timedelta(days=1)  # versions in the recent past: all acceptable
        self.versions: dict[str, int] = {}
        self.sent = 0

    def send(self, object_ids: list[str]) -> None:
        rows = []
        for object_id in object_ids:
            v = self.versions[object_id] = self.versions.get(object_id, -1) + 1
            stamp = self.base + timedelta(seconds=v)
            payload = {
                "item_id": object_id,
                "name": f"product {object_id} v{v}",
                "rate": f"{v}.50",
                "last_modified_time": stamp.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            }
            rows.append(
                QueueItem(
                    entity="products",
                    object_id=object_id,
                    version=stamp,
                    payload=payload,
                    source=QueueItem.Source.WEBHOOK,
                )
            )
        self.sent += queue.enqueue_many(rows, now=timezone.now())

    def wave(self) -> None:
        self.send(self.rng.sample(sorted(self.versions), WAVE_OBJECTS))

    def newest(self) -> dict[str, str]:
        return {object_id: f"product {object_id} v{v}" for object_id, v in self.versions.items()}


def busy_drainer_pid(within: float) -> tuple[int, int]:
    """(pid, rows it holds) of a drainer holding a lease, waiting up to `within` seconds for one;
    else any beating drainer's, holding nothing: the kill lands between batches."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        holder = (
            QueueItem.objects.filter(status=QueueItem.Status.PROCESSING)
            .values("locked_by")
            .annotate(n=Count("id"))
            .order_by("-n")
            .first()
        )
        if holder:
            pid = WorkerHeartbeat.objects.filter(worker_id=holder["locked_by"]).values_list("pid", flat=True).first()
            if pid and pid != os.getpid():
                return pid, holder["n"]
        time.sleep(0.005)
    pid = WorkerHeartbeat.objects.exclude(pid=os.getpid()).values_list("pid", flat=True).first()
    return pid, 0


def rows_in_flight(within: float) -> int:
    """Rows processing now, waiting up to `within` seconds for a batch in flight (0: none came)."""
    deadline = time.monotonic() + within
    while not (held := QueueItem.objects.filter(status=QueueItem.Status.PROCESSING).count()):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    return held


def unfinished() -> int:
    return QueueItem.objects.exclude(status__in=QueueItem.FINISHED).count()


def counts(sender: Sender) -> dict[str, int]:
    completed = QueueItem.objects.filter(status=QueueItem.Status.COMPLETED).count()
    applied = AuditTrail.objects.count()
    twice = AuditTrail.objects.values("object_id", "version").annotate(n=Count("id")).filter(n__gt=1)
    stored = dict(Product.objects.values_list("zoho_id", "name"))
    behind = sum(1 for object_id, name in sender.newest().items() if stored.get(object_id) != name)
    return {
        "sent": sender.sent,
        "stored": QueueItem.objects.count(),
        "completed": completed,
        "skipped": QueueItem.objects.filter(status=QueueItem.Status.SKIPPED).count(),
        "applied": applied,
        "duplicated": sum(row["n"] - 1 for row in twice),
        "processing": QueueItem.objects.filter(status=QueueItem.Status.PROCESSING).count(),
        "waiting": QueueItem.objects.filter(status__in=QueueItem.WAITING).count(),
        "dead_letters": DeadLetter.objects.count(),
        "objects_behind": behind,
        # A change lost: an object not at its newest version, or a row never finished.
        "lost": behind + unfinished(),
    }


def test_a_drainer_and_then_the_whole_cluster_killed_mid_drain_lose_and_double_nothing():
    config.update_many(
        {
            BATCH_SIZE: 50,
            LOCK_TIMEOUT_SECONDS: LEASE_SECONDS,
            HEARTBEAT_PERIOD_SECONDS: 1,
            QUEUE_POLL_INTERVAL_MS: 100,
            DRAINERS: 2,
        }
    )
    rng = random.Random(SEED)
    kill_drainer_at = rng.uniform(0.3, 1.5)  # seconds after the cluster's drainers first beat
    kill_cluster_at = kill_drainer_at + rng.uniform(1.5, 3.0)
    restart_at = kill_cluster_at + 0.5
    last_wave_at = restart_at + 2.0
    sender = Sender(rng)
    sender.send([f"p{n}" for n in range(OBJECTS)])
    story = [f"seed {SEED}"]

    cluster = start_cluster()
    try:
        wait_for(drainer_beats, 60, "no drainer started with the cluster")
        began = time.monotonic()
        drainer_killed = cluster_killed = restarted = False
        while (at := time.monotonic() - began) < last_wave_at:
            sender.wave()
            if not drainer_killed and at >= kill_drainer_at:
                pid, held = busy_drainer_pid(within=1.0)
                os.kill(pid, signal.SIGKILL)
                drainer_killed = True
                story.append(f"drainer pid {pid} killed at {at:.2f} s holding {held} rows")
            elif not cluster_killed and at >= kill_cluster_at:
                held = rows_in_flight(within=1.0)
                stop(cluster, signal.SIGKILL)
                cluster_killed = True
                story.append(f"cluster killed at {at:.2f} s, {held} rows processing")
            elif cluster_killed and not restarted and at >= restart_at:
                cluster = start_cluster()
                restarted = True
                story.append(f"cluster started again at {at:.2f} s")
            time.sleep(WAVE_EVERY_SECONDS)
        drained = time.monotonic()
        while unfinished() and time.monotonic() - drained < DRAINED_WITHIN_SECONDS:
            time.sleep(0.1)
        story.append(f"queue drained {time.monotonic() - drained:.2f} s after the last wave")
    finally:
        err = stop(cluster)
    tally = counts(sender)
    message = f"{'; '.join(story)}\ncounts: {tally}\ncluster log (tail):\n{err[-2000:]}"
    print(f"{'; '.join(story)}\ncounts: {tally}")
    assert drainer_killed and cluster_killed and restarted, message
    assert tally["stored"] == tally["sent"], message
    assert tally["applied"] == tally["completed"], message  # an audit row per completed row, no more
    assert tally["duplicated"] == 0, message
    assert tally["processing"] == tally["waiting"] == tally["dead_letters"] == 0, message
    assert tally["lost"] == 0, message
