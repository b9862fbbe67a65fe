"""Several real worker processes on one PostgreSQL queue: no lost, doubled or out-of-order apply."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone

from erp.models import Product
from sync.config_keys import BATCH_SIZE, HEARTBEAT_PERIOD_SECONDS, LOCK_TIMEOUT_SECONDS, QUEUE_POLL_INTERVAL_MS
from sync.models import AuditTrail, DeadLetter, QueueItem, WorkerHeartbeat
from sync.payloads import content_hash
from tdscore import config

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
BASE_DIR = Path(settings.BASE_DIR)
T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)


def worker_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}"
    # The same SECRET_KEY: django-q2 signs the tasks it stores in the ORM broker.
    return {**os.environ, "DATABASE_URL": url, "SECRET_KEY": settings.SECRET_KEY, "TDS_CONFIG_CACHE_SECONDS": "0.2"}


def start_worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "process_queue", *args],
        cwd=BASE_DIR,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def backlog(objects: int, versions: int, *, seed: int = 1) -> None:
    """Every version of every product, in shuffled arrival order.

    Inserted in bulk rather than through `enqueue`, so superseding at insert time does not thin the
    backlog: the workers themselves must sort out the versions that reach them together.
    """
    rows = []
    for n in range(objects):
        for v in range(versions):
            stamp = T0 + timedelta(minutes=v)
            payload = {
                "item_id": f"p{n}",
                "name": f"product {n} v{v}",
                "rate": f"{v}.50",
                "last_modified_time": stamp.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            }
            rows.append((f"p{n}", stamp, payload))
    random.Random(seed).shuffle(rows)
    now = timezone.now()
    QueueItem.objects.bulk_create(
        [
            QueueItem(
                entity="products",
                object_id=object_id,
                version=stamp,
                payload=payload,
                content_hash=content_hash(payload),
                source=QueueItem.Source.WEBHOOK,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for object_id, stamp, payload in rows
        ],
        batch_size=1000,
    )


def assert_all_applied_once(objects: int, versions: int) -> None:
    assert not QueueItem.objects.exclude(status__in=QueueItem.FINISHED).exists()
    assert not DeadLetter.objects.exists()
    newest = T0 + timedelta(minutes=versions - 1)
    assert Product.objects.count() == objects
    assert set(Product.objects.values_list("zoho_last_modified", flat=True)) == {newest}
    assert Product.objects.filter(name__endswith=f"v{versions - 1}").count() == objects
    completed = QueueItem.objects.filter(status=QueueItem.Status.COMPLETED).count()
    assert AuditTrail.objects.count() == completed
    doubled = AuditTrail.objects.values("object_id", "version").annotate(n=Count("id")).filter(n__gt=1)
    assert not doubled.exists(), list(doubled[:5])


def test_four_worker_processes_drain_5000_rows_exactly_once():
    config.update_many({BATCH_SIZE: 100, QUEUE_POLL_INTERVAL_MS: 50})
    backlog(500, 10)
    workers = [start_worker("--once") for _ in range(4)]
    try:
        outputs = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            w.kill() if w.poll() is None else None
    for w, (_out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
        assert "deadlock" not in err.lower()
    assert_all_applied_once(500, 10)
    # Each worker took a share: the claim does not serialise them on one batch.
    assert QueueItem.objects.values("locked_by").distinct().count() >= 2
    assert not QueueItem.objects.filter(attempts__gt=1).exists(), "no retries: no deadlocks or lease losses"


def test_rows_of_a_worker_killed_mid_batch_are_taken_again_and_applied_once():
    config.update_many({BATCH_SIZE: 400, LOCK_TIMEOUT_SECONDS: 1, QUEUE_POLL_INTERVAL_MS: 50})
    backlog(400, 5, seed=2)
    victim = start_worker()
    try:
        deadline = time.monotonic() + 60
        while not QueueItem.objects.filter(status=QueueItem.Status.COMPLETED).exists():
            assert time.monotonic() < deadline and victim.poll() is None, victim.stderr.read() if victim.poll() else ""
            time.sleep(0.02)
        while not QueueItem.objects.filter(status=QueueItem.Status.PROCESSING).exists():
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()
    orphaned = set(QueueItem.objects.filter(status=QueueItem.Status.PROCESSING).values_list("pk", flat=True))
    assert orphaned, "the kill landed between batches; nothing to recover"
    time.sleep(1.2)  # across processes the lease really has to run out
    rescuer = start_worker("--once")
    out, err = rescuer.communicate(timeout=120)
    assert rescuer.returncode == 0, err
    assert_all_applied_once(400, 5)
    rescued = QueueItem.objects.filter(pk__in=orphaned)
    assert set(rescued.values_list("lease_expiries", flat=True)) == {1}
    assert rescued.aggregate(Max("attempts"))["attempts__max"] == 1, "the lost try was refunded"


def test_process_queue_stops_cleanly_on_sigterm():
    config.update(QUEUE_POLL_INTERVAL_MS, 50)
    drainer = start_worker()
    try:
        deadline = time.monotonic() + 30
        while not WorkerHeartbeat.objects.filter(worker_id__startswith="cli-").exists():
            assert time.monotonic() < deadline and drainer.poll() is None
            time.sleep(0.05)
        drainer.send_signal(signal.SIGTERM)
        out, err = drainer.communicate(timeout=10)
    finally:
        if drainer.poll() is None:
            drainer.kill()
    assert drainer.returncode == 0, err
    assert out.startswith("stopped: completed 0")


def test_watchdog_started_drainer_applies_rows_in_the_cluster_and_hands_over():
    from sync import tasks
    from tests.factories import queue_item

    config.update_many({QUEUE_POLL_INTERVAL_MS: 50, HEARTBEAT_PERIOD_SECONDS: 1})
    tasks.ensure_drainers()  # autocommit here: the task is in the ORM broker at once
    item = queue_item(now=timezone.now())
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR,
        env={**worker_env(), "TDS_DRAIN_DEADLINE_SECONDS": "1", "TDS_Q_WORKERS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers are its children: stop them as one group
    )
    try:
        deadline = time.monotonic() + 40
        while QueueItem.objects.get(pk=item.pk).status != QueueItem.Status.COMPLETED:
            assert time.monotonic() < deadline and cluster.poll() is None, "the drainer did not apply the row"
            time.sleep(0.1)
        # Each drain task lasts 1 s and enqueues its successor under the same worker id: the one
        # heartbeat row keeps moving well past the first task's deadline.
        first_seen = WorkerHeartbeat.objects.get().last_seen_at
        while WorkerHeartbeat.objects.get().last_seen_at < first_seen + timedelta(seconds=3):
            assert time.monotonic() < deadline, "no successor drain task ran"
            time.sleep(0.1)
        assert WorkerHeartbeat.objects.count() == 1
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            _out, err = cluster.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            _out, err = cluster.communicate()
        print(err[-3000:])  # shown when the test fails
