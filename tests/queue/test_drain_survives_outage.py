"""Real processes: a qcluster of two workers, one drainer, with Zoho unreachable (a closed port) and
a pull of every entity in line before the drainer. Webhooks posted meanwhile are applied within a
few poll intervals: no run sleeps in a worker, and runs take only the worker the drainer leaves. A
cluster killed with -9 and started again moves its queue within seconds, not on the watchdog's
minute."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sync import entities, pull, tasks
from sync.config_keys import DRAINERS, HEARTBEAT_PERIOD_SECONDS, QUEUE_POLL_INTERVAL_MS
from sync.models import QueueItem, SyncRun, WorkerHeartbeat
from tdscore import config
from tests.infra.conftest import free_port
from tests.queue.test_concurrency import BASE_DIR, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TOKEN = "outage-test-token"
POLL_MS = 50
WEBHOOKS = 30
# The drainer's hand-over (a 1 s drain task, then its successor through the broker, polled every
# 0.5 s) and a busy 2-core machine; a starved drain took minutes.
APPLIED_WITHIN_SECONDS = 5.0
RESTARTED_WITHIN_SECONDS = 10.0


def start_cluster() -> subprocess.Popen:
    unreachable = f"http://127.0.0.1:{free_port()}"
    env = {
        **worker_env(),
        "TDS_Q_WORKERS": "2",
        "TDS_DRAIN_DEADLINE_SECONDS": "1",
        "ZOHO_API_BASE": unreachable,
        "ZOHO_ACCOUNTS_BASE": unreachable,
        "ZOHO_CLIENT_ID": "client",
        "ZOHO_CLIENT_SECRET": "secret",
        "ZOHO_REFRESH_TOKEN": "refresh",
        "ZOHO_ORGANIZATION_ID": "60012345",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers are its children: stop them as one group
    )


def stop(cluster: subprocess.Popen, sig: int = signal.SIGINT) -> str:
    if cluster.poll() is None:
        os.killpg(cluster.pid, sig)
    try:
        return cluster.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        return cluster.communicate()[1]


def wait_for(condition, seconds: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < seconds, what
        time.sleep(0.05)
    return time.monotonic() - began


def drainer_beats() -> bool:
    """A drainer beats from one of the cluster's processes (not from the test's)."""
    recent = timezone.now() - timedelta(seconds=2)
    return WorkerHeartbeat.objects.exclude(pid=os.getpid()).filter(last_seen_at__gte=recent).exists()


def post_webhooks(first: int, count: int) -> list[int]:
    client = Client()
    for n in range(first, first + count):
        answer = client.post(
            "/webhooks/products",
            {"item_id": f"w{n}", "name": f"Widget {n}", "last_modified_time": "2026-07-01T10:00:00Z"},
            content_type="application/json",
            headers={"X-TDS-Token": TOKEN},
        )
        assert answer.status_code == 202, answer.content
    return list(
        QueueItem.objects.filter(object_id__in=[f"w{n}" for n in range(first, first + count)]).values_list(
            "pk", flat=True
        )
    )


def all_completed(ids: list[int]) -> bool:
    return QueueItem.objects.filter(pk__in=ids, status=QueueItem.Status.COMPLETED).count() == len(ids)


@pytest.fixture(autouse=True)
def short_durations(settings):
    settings.TDS_WEBHOOK_TOKEN = [TOKEN]
    config.update_many({QUEUE_POLL_INTERVAL_MS: POLL_MS, HEARTBEAT_PERIOD_SECONDS: 1, DRAINERS: 1})


def test_with_zoho_unreachable_and_every_entity_pulling_webhooks_are_applied_within_a_few_polls():
    started, _ = pull.start_runs(list(entities.ENTITIES), "full", now=timezone.now(), trigger="schedule")
    tasks.launch_runs(started)  # autocommit: every pull is in the broker before the drainer
    cluster = start_cluster()
    try:
        wait_for(drainer_beats, 60, "no drainer started with the cluster")
        # Let the runs meet the outage and the drainer hand over to its successor a few times.
        wait_for(lambda: SyncRun.objects.filter(calls__gt=0).exists(), 30, "no run tried to reach Zoho")
        time.sleep(3)
        ids = post_webhooks(0, WEBHOOKS)
        took = wait_for(lambda: all_completed(ids), 60, "the webhooks were never all applied")
        print(f"{WEBHOOKS} webhooks applied {took:.2f} s after they were posted, with Zoho unreachable")
        assert took <= APPLIED_WITHIN_SECONDS
        assert not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).count() > 1, "runs took the drainer's worker"
    finally:
        err = stop(cluster)
        print(err[-3000:])  # shown when the test fails


def test_a_cluster_killed_and_started_again_moves_its_queue_within_seconds():
    cluster = start_cluster()
    try:
        wait_for(drainer_beats, 60, "no drainer started with the cluster")
        first = post_webhooks(0, 5)
        wait_for(lambda: all_completed(first), 30, "the first webhooks were not applied")
        stop(cluster, signal.SIGKILL)
        ids = post_webhooks(100, WEBHOOKS)
        cluster = start_cluster()
        took = wait_for(lambda: all_completed(ids), 60, "the restarted cluster never applied the queue")
        print(f"restarted after kill -9: the queue moved within {took:.2f} s")
        assert took <= RESTARTED_WITHIN_SECONDS
    finally:
        err = stop(cluster)
        print(err[-3000:])
