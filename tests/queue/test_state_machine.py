"""The queue row state machine, driven through sync.queue directly (no handlers needed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from sync import queue
from sync.config_keys import (
    BATCH_SIZE,
    LEASE_EXPIRY_LIMIT,
    LOCK_TIMEOUT_SECONDS,
    MAX_RETRY_ATTEMPTS,
    RETRY_BACKOFF_BASE_MS,
    RETRY_BACKOFF_MAX_MS,
)
from sync.errors import ValidationFailed
from sync.models import DeadLetter, InboxEvent, QueueItem, SyncLog
from tdscore import config
from tests import factories
from tests.factories import inbox_event, queue_item

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def claim(worker_id: str = "w1", now: datetime = NOW) -> queue.Batch | None:
    return queue.claim_batch(worker_id=worker_id, now=now)


def test_claim_leases_due_rows_in_priority_order_and_counts_the_attempt():
    low = queue_item(object_id="1", now=NOW)
    high = queue_item(object_id="2", now=NOW, priority=5)
    batch = claim()
    assert [i.pk for i in batch.items] == [high.pk, low.pk]
    for item in batch.items:
        assert item.status == QueueItem.Status.PROCESSING
        assert item.attempts == 1
        assert item.locked_by == "w1"
        assert item.lease_token == batch.token
        assert item.locked_until == NOW + timedelta(seconds=config.get(LOCK_TIMEOUT_SECONDS))


def test_claim_takes_one_entity_per_batch():
    queue_item("products", "1", now=NOW)
    queue_item("customers", "2", payload={"contact_id": "2"}, now=NOW + timedelta(seconds=1))
    queue_item("products", "3", now=NOW + timedelta(seconds=2))
    later = NOW + timedelta(seconds=5)
    first, second = claim(now=later), claim(now=later)
    assert {i.entity for i in first.items} == {"products"} and len(first.items) == 2
    assert {i.entity for i in second.items} == {"customers"}


def test_claim_leaves_future_retries_and_claimed_rows():
    queue_item(object_id="1", now=NOW + timedelta(minutes=1))
    queue_item(object_id="2", now=NOW)
    assert len(claim().items) == 1
    assert claim("w2") is None


def test_claim_respects_batch_size():
    for n in range(5):
        queue_item(object_id=str(n), now=NOW)
    config.update(BATCH_SIZE, 2)
    assert len(claim().items) == 2


def test_paused_entity_is_never_claimed_and_resume_releases_it():
    queue_item(object_id="1", now=NOW)
    queue.pause(["products"], actor=factories.actor())
    assert claim() is None
    queue.resume(["products"], actor=factories.actor())
    assert len(claim().items) == 1


def test_worker_whose_lease_expired_cannot_finish_the_new_owners_rows():
    queue_item(object_id="1", now=NOW)
    config.update(LOCK_TIMEOUT_SECONDS, 1)
    stale = claim("slow")
    later = NOW + timedelta(seconds=2)
    queue.recover_expired_leases(now=later)
    fresh = claim("fast", now=later)
    with pytest.raises(queue.LeaseLost):
        queue.finish(stale, stale.items, {stale.items[0].pk: "applied"}, now=later)
    row = QueueItem.objects.get()
    assert (row.status, row.locked_by, row.lease_token) == (QueueItem.Status.PROCESSING, "fast", fresh.token)


def test_failure_reported_by_a_worker_whose_lease_expired_is_ignored():
    queue_item(object_id="1", now=NOW)
    config.update(LOCK_TIMEOUT_SECONDS, 1)
    stale = claim("slow")
    later = NOW + timedelta(seconds=2)
    queue.recover_expired_leases(now=later)
    claim("fast", now=later)
    queue.record_failure(stale, stale.items[0], ValidationFailed("bad"), now=later, rng=random.Random(1))
    assert QueueItem.objects.get().status == QueueItem.Status.PROCESSING
    assert not DeadLetter.objects.exists()


def test_finish_completes_and_skips_by_outcome_and_marks_inbox_processed():
    event = inbox_event()
    applied = queue_item(object_id="1", now=NOW, inbox_event=event)
    stale = queue_item(object_id="2", now=NOW)
    unchanged = queue_item(object_id="3", now=NOW)
    batch = claim()
    outcomes = {applied.pk: "applied", stale.pk: "stale", unchanged.pk: "unchanged"}
    queue.finish(batch, batch.items, outcomes, now=NOW)
    for row in (applied, stale, unchanged, event):
        row.refresh_from_db()
    assert (applied.status, applied.skip_reason, applied.finished_at) == (QueueItem.Status.COMPLETED, "", NOW)
    assert (stale.status, stale.skip_reason, stale.finished_at) == (QueueItem.Status.SKIPPED, "stale", NOW)
    assert (unchanged.status, unchanged.skip_reason) == (QueueItem.Status.SKIPPED, "unchanged")
    assert QueueItem.objects.filter(lease_token__isnull=False).count() == 0
    assert event.status == InboxEvent.Status.PROCESSED


def test_expired_lease_is_taken_again_and_counted():
    item = queue_item(object_id="1", now=NOW)
    config.update(LOCK_TIMEOUT_SECONDS, 1)
    claim("killed")
    later = NOW + timedelta(seconds=2)
    assert claim("other", now=later) is None  # recovery is a separate step of process_batch
    queue.recover_expired_leases(now=later)
    batch = claim("other", now=later)
    item.refresh_from_db()
    assert batch.items[0].pk == item.pk
    assert (item.lease_expiries, item.attempts, item.locked_by) == (1, 1, "other")


def test_renewed_lease_is_not_taken_by_another_worker():
    queue_item(object_id="1", now=NOW)
    config.update(LOCK_TIMEOUT_SECONDS, 2)
    batch = claim("slow")
    queue.renew(batch, now=NOW + timedelta(seconds=1.5))
    later = NOW + timedelta(seconds=3)
    assert queue.recover_expired_leases(now=later) == 0
    queue.finish(batch, batch.items, {batch.items[0].pk: "applied"}, now=later)
    assert QueueItem.objects.get().status == QueueItem.Status.COMPLETED


def test_row_whose_lease_keeps_expiring_is_dead_lettered_as_lease_expired():
    event = inbox_event()
    queue_item(object_id="1", now=NOW, inbox_event=event)
    config.update_many({LOCK_TIMEOUT_SECONDS: 1, LEASE_EXPIRY_LIMIT: 2})
    now = NOW
    for _ in range(2):
        claim(now=now)
        now += timedelta(seconds=2)
        queue.recover_expired_leases(now=now)
    item = QueueItem.objects.get()
    assert item.status == QueueItem.Status.DEAD_LETTER
    dead = DeadLetter.objects.get()
    assert (dead.reason, dead.queue_item_id) == (DeadLetter.Reason.LEASE_EXPIRED, item.pk)
    event.refresh_from_db()
    assert event.status == InboxEvent.Status.REJECTED


def test_permanent_failure_dead_letters_at_once_with_error_and_traceback():
    event = inbox_event()
    queue_item(object_id="1", now=NOW, inbox_event=event)
    batch = claim()
    try:
        raise ValidationFailed("rate is not a number")
    except ValidationFailed as exc:
        status = queue.record_failure(batch, batch.items[0], exc, now=NOW, rng=random.Random(1))
    assert status == QueueItem.Status.DEAD_LETTER
    dead = DeadLetter.objects.get()
    assert (dead.reason, dead.error_class, dead.attempts) == ("validation", "ValidationFailed", 1)
    assert "rate is not a number" in dead.error and "raise ValidationFailed" in dead.traceback
    assert dead.payload["item_id"] == "1" and dead.first_failed_at == NOW
    event.refresh_from_db()
    assert event.status == InboxEvent.Status.REJECTED
    assert SyncLog.objects.filter(queue_item=batch.items[0], level="error").exists()


def test_transient_failure_retries_under_a_growing_backoff_ceiling(time_machine):
    config.update_many({RETRY_BACKOFF_BASE_MS: 1000, RETRY_BACKOFF_MAX_MS: 3000, MAX_RETRY_ATTEMPTS: 5})
    time_machine.move_to(NOW, tick=False)
    queue_item(object_id="1", now=NOW)
    seeded, replica = random.Random(7), random.Random(7)
    now = NOW
    for ceiling_ms in [1000, 2000, 3000, 3000]:
        batch = claim(now=now)
        assert batch is not None, "the retry is due once its next_attempt_at has passed"
        assert queue.record_failure(batch, batch.items[0], RuntimeError("parent missing"), now=now, rng=seeded) == (
            "retry"
        )
        item = QueueItem.objects.get()
        assert item.next_attempt_at - now == timedelta(milliseconds=replica.uniform(0, ceiling_ms))
        assert claim(now=now) is None  # not due yet
        now = item.next_attempt_at
        time_machine.move_to(now, tick=False)
    assert item.attempts == 4 and item.failing_since == NOW and "parent missing" in item.last_error


def test_transient_failure_dead_letters_after_max_retry_attempts():
    config.update_many({MAX_RETRY_ATTEMPTS: 3, RETRY_BACKOFF_BASE_MS: 1})
    queue_item(object_id="1", now=NOW)
    now = NOW
    statuses = []
    for _ in range(3):
        now += timedelta(seconds=1)
        batch = claim(now=now)
        statuses.append(queue.record_failure(batch, batch.items[0], RuntimeError("x"), now=now, rng=random.Random()))
    assert statuses == ["retry", "retry", "dead_letter"]
    dead = DeadLetter.objects.get()
    assert (dead.reason, dead.attempts) == ("retries_exhausted", 3)
    assert (dead.first_failed_at, dead.last_failed_at) == (NOW + timedelta(seconds=1), now)


def test_infrastructure_wait_refunds_the_attempt():
    from django.db import OperationalError

    config.update_many({MAX_RETRY_ATTEMPTS: 1, RETRY_BACKOFF_BASE_MS: 1})
    queue_item(object_id="1", now=NOW)
    now = NOW
    for _ in range(4):
        now += timedelta(seconds=1)
        batch = claim(now=now)
        status = queue.record_failure(
            batch,
            batch.items[0],
            OperationalError("server closed the connection unexpectedly"),
            now=now,
            rng=random.Random(),
        )
        assert status == "retry"
    item = QueueItem.objects.get()
    assert (item.status, item.attempts) == (QueueItem.Status.RETRY, 0)
    assert not DeadLetter.objects.exists()


def test_database_deadlock_counts_as_infrastructure_and_data_error_as_validation():
    from django.db import DataError, OperationalError

    assert queue.classify(OperationalError("deadlock detected"))[0] is queue.FailureKind.INFRASTRUCTURE
    assert queue.classify(DataError("numeric field overflow")) == (queue.FailureKind.PERMANENT, "validation")
    assert queue.classify(KeyError("rate"))[0] is queue.FailureKind.TRANSIENT


def dead_lettered(object_id: str = "1", **fields) -> DeadLetter:
    queue_item(object_id=object_id, now=NOW, **fields)
    batch = claim()
    queue.record_failure(batch, batch.items[0], ValidationFailed("bad"), now=NOW, rng=random.Random())
    return DeadLetter.objects.get(queue_item=batch.items[0])


def test_replay_sends_the_same_row_back_to_pending_with_attempts_reset():
    event = inbox_event()
    dead = dead_lettered(inbox_event=event)
    later = NOW + timedelta(hours=1)
    item = queue.replay(dead, actor=factories.actor("ops"), now=later)
    assert item.pk == dead.queue_item_id
    assert (item.status, item.attempts, item.next_attempt_at, item.source) == ("pending", 0, later, "webhook")
    dead.refresh_from_db(), event.refresh_from_db()
    assert (dead.resolution, dead.resolved_by, dead.resolved_at) == ("replayed", "ops", later)
    assert event.status == InboxEvent.Status.QUEUED
    assert len(claim(now=later).items) == 1


def test_a_new_failure_after_replay_opens_a_new_dead_letter():
    dead = dead_lettered()
    queue.replay(dead, actor=factories.actor("ops"), now=NOW)
    batch = claim()
    queue.record_failure(batch, batch.items[0], ValidationFailed("still bad"), now=NOW, rng=random.Random())
    assert DeadLetter.objects.filter(queue_item=dead.queue_item).count() == 2
    assert DeadLetter.objects.unresolved().get().error.endswith("still bad")


def test_replaying_a_resolved_dead_letter_is_refused():
    dead = dead_lettered()
    queue.discard(dead, actor=factories.actor("ops"), now=NOW)
    with pytest.raises(queue.AlreadyResolved, match="already discarded by ops"):
        queue.replay(dead, actor=factories.actor("ops"), now=NOW)


def test_ingest_dead_letter_cannot_be_replayed_only_discarded_or_fixed():
    event = inbox_event()
    dead = queue.dead_letter_at_ingest(inbox_event=event, entity="products", payload={}, error="no item_id", now=NOW)
    with pytest.raises(queue.NotReplayable, match="discard it, or mark it fixed"):
        queue.replay(dead, actor=factories.actor("ops"), now=NOW)
    queue.mark_fixed(dead, actor=factories.actor("ops"), now=NOW)
    dead.refresh_from_db()
    assert dead.resolution == "fixed"
