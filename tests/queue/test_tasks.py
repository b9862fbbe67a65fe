"""The django-q2 edge: drain tasks hand over to a successor; the watchdog restarts missing drainers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from sync import tasks, worker
from sync.config_keys import DRAINERS
from sync.models import QueueItem, WorkerHeartbeat
from tdscore import config
from tests.factories import queue_item

pytestmark = pytest.mark.django_db


def queued_drainers() -> list[tuple]:
    return [(q.task["func"], q.task["args"]) for q in OrmQ.objects.all()]


def test_watchdog_starts_a_drainer_when_no_heartbeat_is_fresh(django_capture_on_commit_callbacks):
    stale = timezone.now() - timedelta(minutes=10)
    worker.beat("drainer-dead", now=stale, rows=0)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.ensure_drainers() == 1
    [(func, args)] = queued_drainers()
    assert func == "sync.tasks.drain_task"
    # The new drainer counts as alive at once, so the next watchdog run does not start it twice.
    assert WorkerHeartbeat.objects.filter(worker_id=args[0]).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.ensure_drainers() == 0
    assert OrmQ.objects.count() == 1


def test_watchdog_tops_up_to_the_configured_number_of_drainers(django_capture_on_commit_callbacks):
    config.update(DRAINERS, 3)
    worker.beat("drainer-alive", now=timezone.now(), rows=0)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.ensure_drainers() == 2
    assert OrmQ.objects.count() == 2


def test_drain_task_drains_until_its_deadline_then_enqueues_its_successor(settings, django_capture_on_commit_callbacks):
    settings.TDS_DRAIN_DEADLINE_SECONDS = 0.3
    item = queue_item(now=timezone.now())
    worker.beat("drainer-x", now=timezone.now(), rows=0)  # as its starter (ensure_drainers) does
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.drain_task("drainer-x") == 1
    item.refresh_from_db()
    assert item.status == QueueItem.Status.COMPLETED
    assert queued_drainers() == [("sync.tasks.drain_task", ("drainer-x",))]
