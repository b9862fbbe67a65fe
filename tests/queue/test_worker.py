"""The worker with the real handlers: batches, bisection, replay and pause end to end."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from erp.models import Product
from sync import queue, worker
from sync.config_keys import BATCH_SIZE, LEASE_EXPIRY_LIMIT, LOCK_TIMEOUT_SECONDS
from sync.models import AuditTrail, DeadLetter, InboxEvent, QueueItem, WorkerHeartbeat
from tdscore import config
from tests import factories
from tests.factories import inbox_event, product_payload, queue_item

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def version(minutes: int) -> datetime:
    return datetime(2026, 11, 1, 10, tzinfo=UTC) + timedelta(minutes=minutes)


def product_row(object_id: str, *, minutes: int = 0, now: datetime = NOW, **fields) -> QueueItem:
    stamp = version(minutes).strftime("%Y-%m-%dT%H:%M:%S+0000")
    payload = product_payload(object_id, last_modified_time=stamp, **fields)
    return queue_item("products", object_id, payload=payload, version=version(minutes), now=now)


def test_process_batch_applies_rows_and_marks_inbox_processed():
    event = inbox_event()
    item = product_row("1", name="Blue widget")
    QueueItem.objects.filter(pk=item.pk).update(inbox_event=event)
    assert worker.process_batch("w", NOW) == 1
    item.refresh_from_db(), event.refresh_from_db()
    assert item.status == QueueItem.Status.COMPLETED
    assert event.status == InboxEvent.Status.PROCESSED
    assert Product.objects.get(zoho_id="1").name == "Blue widget"
    assert AuditTrail.objects.get().queue_item_id == item.pk


def test_process_batch_returns_zero_when_nothing_is_due():
    assert worker.process_batch("w", NOW) == 0


def test_bisection_isolates_a_poison_row_while_the_rest_complete():
    good = [product_row(str(n)) for n in range(7)]
    poison = product_row("bad", rate="not a number")
    tally = Counter()
    assert worker.process_batch("w", NOW, tally=tally) == 8
    assert tally == Counter({"completed": 7, "dead_letter": 1})
    assert set(QueueItem.objects.filter(pk__in=[g.pk for g in good]).values_list("status", flat=True)) == {"completed"}
    dead = DeadLetter.objects.get()
    assert (dead.queue_item_id, dead.reason) == (poison.pk, "validation")
    assert Product.objects.count() == 7


def test_older_version_in_the_same_batch_is_skipped_as_stale():
    newer = product_row("1", minutes=5, name="new")
    older = queue.enqueue(
        entity="products",
        object_id="1",
        payload=product_payload("1", name="old", last_modified_time="2026-11-01T10:00:00+0000"),
        content_hash="x" * 64,
        version=version(0),
        source="pull",
        now=NOW,
    )
    worker.process_batch("w", NOW)
    newer.refresh_from_db(), older.refresh_from_db()
    assert (newer.status, older.status, older.skip_reason) == ("completed", "skipped", "stale")
    assert Product.objects.get().name == "new"


def lease_expired_dead_letter() -> DeadLetter:
    """A row whose worker died twice: the realistic case an operator replays once the cause is fixed."""
    config.update_many({LOCK_TIMEOUT_SECONDS: 1, LEASE_EXPIRY_LIMIT: 2})
    product_row("1", name="replayed")
    now = NOW
    for _ in range(2):
        queue.claim_batch(worker_id="dies", now=now)
        now += timedelta(seconds=2)
        queue.recover_expired_leases(now=now)
    return DeadLetter.objects.get(reason="lease_expired")


def test_replay_from_the_command_reapplies_a_dead_letter():
    dead = lease_expired_dead_letter()
    call_command("replay_dlq", id=dead.pk)
    assert worker.process_batch("w", timezone.now()) == 1
    assert QueueItem.objects.get(pk=dead.queue_item_id).status == QueueItem.Status.COMPLETED
    assert Product.objects.get(zoho_id="1").name == "replayed"


def test_replay_from_the_admin_action_reapplies_a_dead_letter(client, superuser):
    dead = lease_expired_dead_letter()
    client.force_login(superuser)
    client.post(
        "/admin/sync/deadletter/",
        {"action": "replay_selected", "_selected_action": [str(dead.pk)], "post": "yes"},
        follow=True,
    )
    assert worker.process_batch("w", timezone.now()) == 1
    assert Product.objects.get(zoho_id="1").name == "replayed"
    assert QueueItem.objects.get(pk=dead.queue_item_id).status == QueueItem.Status.COMPLETED


def test_pause_holds_and_resume_applies():
    item = product_row("1")
    queue.pause(["products"], actor=factories.actor())
    assert worker.process_batch("w", NOW) == 0
    item.refresh_from_db()
    assert item.status == QueueItem.Status.PENDING and not Product.objects.exists()
    queue.resume(["products"], actor=factories.actor())
    assert worker.process_batch("w", NOW) == 1
    assert Product.objects.filter(zoho_id="1").exists()


def test_process_queue_once_drains_what_is_due_and_prints_counts(capsys):
    for n in range(3):
        product_row(str(n), now=timezone.now())
    product_row("bad", rate="abc", now=timezone.now())
    later = queue_item("products", "later", now=timezone.now() + timedelta(hours=1))
    config.update(BATCH_SIZE, 2)
    call_command("process_queue", "--once")
    out = capsys.readouterr().out
    assert "completed 3" in out and "dead_letter 1" in out
    later.refresh_from_db()
    assert later.status == QueueItem.Status.PENDING
    assert WorkerHeartbeat.objects.filter(worker_id__startswith="cli-").exists()


def test_drain_stops_at_its_deadline_after_writing_a_heartbeat():
    product_row("1", now=timezone.now())
    tally = worker.drain(timezone.now() + timedelta(seconds=0.2), worker_id="drainer-test")
    assert tally["completed"] == 1
    assert WorkerHeartbeat.objects.get(worker_id="drainer-test").rows_processed == 1


def test_deadlock_style_failure_waits_without_using_an_attempt():
    from django.db import OperationalError

    item = product_row("1")
    batch = queue.claim_batch(worker_id="w", now=NOW)
    queue.record_failure(batch, batch.items[0], OperationalError("deadlock detected"), now=NOW, rng=random.Random(3))
    item.refresh_from_db()
    assert (item.status, item.attempts) == (QueueItem.Status.RETRY, 0)
