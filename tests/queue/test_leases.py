"""Leases across real processes: renewed while the drain runs, given back on a stop.

A slow apply is made the honest way: the test holds the ERP row's lock from a connection of its own,
so the worker's apply waits in PostgreSQL exactly as it would behind a long transaction.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from erp.models import Product
from sync import queue, tasks, worker
from sync.config_keys import LOCK_TIMEOUT_SECONDS, QUEUE_POLL_INTERVAL_MS
from sync.models import AuditTrail, QueueItem
from tdscore import config
from tests.factories import product_payload, queue_item
from tests.queue.test_concurrency import BASE_DIR, start_worker, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
STOP_SECONDS = 5


def product_version(name: str, minutes: int) -> QueueItem:
    stamp = datetime(2026, 11, 1, 10, tzinfo=UTC) + timedelta(minutes=minutes)
    payload = product_payload("1", name=name, last_modified_time=stamp.strftime("%Y-%m-%dT%H:%M:%S+0000"))
    return queue_item("products", "1", payload=payload, version=stamp)


@contextmanager
def erp_row_locked() -> Iterator[None]:
    """Product 1 stored, then its row locked by another connection until the block ends."""
    product_version("stored", 0)
    assert worker.process_batch("setup", timezone.now()) == 1
    dsn = connection.get_connection_params()
    with psycopg.connect(
        dbname=dsn["dbname"], user=dsn.get("user"), host=dsn.get("host"), port=dsn.get("port")
    ) as held:
        held.execute(f"SELECT 1 FROM {Product._meta.db_table} WHERE zoho_id = '1' FOR UPDATE")
        yield
        held.rollback()


def wait_until_apply_waits_on_the_lock(process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the worker never reached the locked row"
        time.sleep(0.05)


def test_a_batch_that_outlives_its_first_lease_keeps_it_and_is_applied_once():
    config.update_many({LOCK_TIMEOUT_SECONDS: 1, QUEUE_POLL_INTERVAL_MS: 50})
    with erp_row_locked():
        item = product_version("newer", 5)
        drainer = start_worker("--once")
        try:
            wait_until_apply_waits_on_the_lock(drainer)
            time.sleep(3)  # three leases long: across processes the time has to pass
            now = timezone.now()
            assert queue.recover_expired_leases(now=now) == 0
            assert queue.claim_batch(worker_id="rival", now=now) is None
        finally:
            pass  # the lock goes with the block; the worker then finishes
    out, err = drainer.communicate(timeout=60)
    assert drainer.returncode == 0, err
    assert out.startswith("done: completed 1")
    item.refresh_from_db()
    assert (item.status, item.attempts, item.lease_expiries) == (QueueItem.Status.COMPLETED, 1, 0)
    assert item.locked_by.startswith("cli-")
    assert Product.objects.get(zoho_id="1").name == "newer"
    assert AuditTrail.objects.filter(queue_item_id=item.pk).count() == 1


def test_a_stopped_worker_gives_back_a_batch_stuck_in_its_apply_at_once():
    config.update_many({QUEUE_POLL_INTERVAL_MS: 50})  # the default lease: 300 s
    with erp_row_locked():
        item = product_version("newer", 5)
        drainer = start_worker()
        wait_until_apply_waits_on_the_lock(drainer)
        started = time.monotonic()
        drainer.send_signal(signal.SIGTERM)
        out, err = drainer.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    assert drainer.returncode == 0, err
    assert stopped_in < STOP_SECONDS, f"stopped in {stopped_in:.1f} s"
    item.refresh_from_db()
    # Released: due for any worker now, not in 300 s; the interrupted try refunded.
    assert (item.status, item.attempts, item.lease_token, item.locked_until) == ("pending", 0, None, None)
    assert worker.process_batch("rescuer", timezone.now()) == 1
    assert Product.objects.get(zoho_id="1").name == "newer"


def test_ctrl_c_stops_a_cluster_with_a_drain_stuck_in_its_apply_within_five_seconds():
    """As a terminal's Ctrl-C (and `make run`) does: SIGINT to the cluster's whole process group."""
    config.update_many({QUEUE_POLL_INTERVAL_MS: 50})
    with erp_row_locked():
        item = product_version("newer", 5)
        tasks.ensure_drainers()  # autocommit: the drain task is in the ORM broker at once
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env={**worker_env(), "TDS_Q_WORKERS": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            wait_until_apply_waits_on_the_lock(cluster)
            started = time.monotonic()
            os.killpg(cluster.pid, signal.SIGINT)
            _out, err = cluster.communicate(timeout=30)
            stopped_in = time.monotonic() - started
        finally:
            if cluster.poll() is None:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.communicate()
    assert stopped_in < STOP_SECONDS, f"stopped in {stopped_in:.1f} s:\n{err[-3000:]}"
    item.refresh_from_db()
    assert (item.status, item.lease_token) == ("pending", None), "released for the next worker"
    assert not QueueItem.objects.filter(status="processing").exists()
    # No successor drain task waits in the broker: the watchdog starts drainers when the cluster is back.
    assert not [q for q in OrmQ.objects.all() if q.func() == "sync.tasks.drain_task"]
