"""`heal`: leases, stuck runs, the redrive ladder, planner statistics, and the metrics it leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from erp.models import Product
from sync import healing, queue, run_lifecycle, worker
from sync.config_keys import HEAL_REDRIVE_LADDER_MINUTES, LEASE_EXPIRY_LIMIT, LOCK_TIMEOUT_SECONDS
from sync.models import AuditTrail, DeadLetter, QueueItem, SyncRun
from tdscore import config
from tdscore.models import Metric
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield lambda **delta: traveller.shift(timedelta(**delta))


def heal() -> str:
    out = StringIO()
    call_command("heal", stdout=out)
    return out.getvalue()


def killed_worker_claims(item: QueueItem) -> None:
    """A drainer claims the row and dies before finishing it: its lease simply runs out."""
    batch = queue.claim_batch(worker_id="drainer-killed", now=timezone.now())
    assert [i.pk for i in batch.items] == [item.pk]


def drain() -> None:
    worker.drain(None, worker_id="test-drainer", once=True)


def test_expired_lease_is_released_and_the_row_then_applied_once(clock):
    config.update(LOCK_TIMEOUT_SECONDS, 60)
    item = factories.queue_item()
    killed_worker_claims(item)
    clock(minutes=2)

    printed = heal()
    item.refresh_from_db()
    assert (item.status, item.lease_expiries, item.lease_token) == (QueueItem.Status.PENDING, 1, None)
    assert "released 1 expired lease(s)" in printed

    drain()
    item.refresh_from_db()
    assert item.status == QueueItem.Status.COMPLETED
    assert AuditTrail.objects.filter(entity="products", object_id="1001").count() == 1
    assert Product.objects.get(zoho_id="1001").name == "Widget 1001"


def test_live_lease_is_left_alone(clock):
    config.update(LOCK_TIMEOUT_SECONDS, 600)
    item = factories.queue_item()
    killed_worker_claims(item)
    clock(minutes=2)

    heal()

    item.refresh_from_db()
    assert item.status == QueueItem.Status.PROCESSING


def test_transient_dead_letter_is_redriven_on_the_ladder(clock):
    config.update_many({LOCK_TIMEOUT_SECONDS: 60, LEASE_EXPIRY_LIMIT: 1})
    item = factories.queue_item()
    killed_worker_claims(item)
    clock(minutes=2)
    heal()  # the expired lease is the row's last: dead letter `lease_expired`
    first = DeadLetter.objects.get(queue_item=item)
    assert first.reason == DeadLetter.Reason.LEASE_EXPIRED
    assert first.next_redrive_at == first.last_failed_at + timedelta(minutes=15)

    clock(minutes=14)
    heal()
    first.refresh_from_db()
    assert first.resolved_at is None

    clock(minutes=2)
    printed = heal()
    first.refresh_from_db()
    item.refresh_from_db()
    assert (first.resolution, first.resolved_by, first.redrive_count) == ("replayed", "heal", 1)
    assert item.status == QueueItem.Status.PENDING
    assert "redrive 1 of 4" in printed

    # It fails the same way again: the next step of the ladder is an hour after that failure.
    killed_worker_claims(item)
    clock(minutes=2)
    heal()
    second = DeadLetter.objects.unresolved().get(queue_item=item)
    assert (second.redrive_count, second.next_redrive_at) == (1, second.last_failed_at + timedelta(hours=1))

    clock(minutes=59)
    heal()
    assert DeadLetter.objects.get(pk=second.pk).resolved_at is None
    clock(minutes=2)
    heal()
    second.refresh_from_db()
    assert (second.resolution, second.redrive_count) == ("replayed", 2)

    # Once redriven, the row is applied like any other.
    drain()
    item.refresh_from_db()
    assert item.status == QueueItem.Status.COMPLETED


def test_a_dead_letter_past_the_last_step_is_left_to_an_operator(clock):
    config.update_many({LOCK_TIMEOUT_SECONDS: 60, LEASE_EXPIRY_LIMIT: 1, HEAL_REDRIVE_LADDER_MINUTES: "15"})
    item = factories.queue_item()
    for _ in range(2):
        killed_worker_claims(item)
        clock(minutes=2)
        heal()
        clock(minutes=20)
        heal()

    left = DeadLetter.objects.unresolved().get(queue_item=item)
    clock(days=30)
    heal()

    left.refresh_from_db()
    assert (left.resolved_at, left.redrive_count, left.next_redrive_at) == (None, 1, None)
    assert DeadLetter.objects.filter(queue_item=item, resolved_by="heal").count() == 1


def test_validation_dead_letter_is_never_redriven(clock):
    item = factories.queue_item(payload={"name": "a product without its item_id"})
    drain()
    dead = DeadLetter.objects.get(queue_item=item)
    assert dead.reason == DeadLetter.Reason.VALIDATION

    for minutes in (16, 61, 361, 1441, 30 * 1440):
        clock(minutes=minutes)
        heal()

    dead.refresh_from_db()
    assert (dead.resolved_at, dead.redrive_count, dead.next_redrive_at) == (None, 0, None)


def test_stuck_run_is_failed_by_heal(clock):
    config.update(LOCK_TIMEOUT_SECONDS, 300)
    run = run_lifecycle.create("products", SyncRun.RunType.INCREMENTAL, now=timezone.now(), trigger="schedule")
    run_lifecycle.claim(run.pk, now=timezone.now())  # its process then dies: no more heartbeats
    clock(minutes=4)
    heal()
    assert SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.RUNNING

    clock(minutes=2)
    printed = heal()

    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("stale: no heartbeat since")
    assert "failed a stuck products run" in printed


def test_every_heal_run_records_a_metric_per_problem(clock):
    config.update(LOCK_TIMEOUT_SECONDS, 60)
    killed_worker_claims(factories.queue_item())
    clock(minutes=2)
    heal()
    clock(minutes=15)
    heal()

    points = list(Metric.objects.filter(name="heal.expired_leases").order_by("at").values_list("value", flat=True))
    assert points == [1, 0]
    assert set(Metric.objects.values_list("name", flat=True)) == {p.metric for p in healing.Problem}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_heal_analyzes_the_queue_after_many_changes():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tds_sync_queue")
    queue.enqueue_many(
        [
            QueueItem(entity="products", object_id=str(n), payload={"item_id": str(n)}, source="pull")
            for n in range(1000)
        ],
        now=timezone.now(),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")

    printed = heal()

    assert "analyzed tds_sync_queue" in printed
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'tds_sync_queue'")
        assert cursor.fetchone()[0] < 50


def test_the_ladder_is_set_as_a_list_or_as_text_and_nonsense_is_refused():
    assert config.update(HEAL_REDRIVE_LADDER_MINUTES, "30, 120") == [30, 120]
    assert config.update(HEAL_REDRIVE_LADDER_MINUTES, [5]) == [5]
    for wrong in ([], "soon", [0], [15, True]):
        with pytest.raises(config.ConfigError):
            config.update(HEAL_REDRIVE_LADDER_MINUTES, wrong)


def test_heal_resolves_dead_letters_whose_object_holds_the_same_or_a_newer_version(clock):
    factories.erp_row(Product, zoho_id="1001", zoho_last_modified=datetime(2026, 11, 1, 12, tzinfo=UTC))
    overtaken = factories.dead_letter(queue_item=factories.queue_item("products", "1001"))  # version 10:00
    caught_up = factories.dead_letter(
        queue_item=factories.queue_item("products", "1001", version=datetime(2026, 11, 1, 12, tzinfo=UTC))
    )
    newer = factories.dead_letter(
        queue_item=factories.queue_item("products", "1001", version=datetime(2026, 11, 1, 13, tzinfo=UTC))
    )
    not_stored = factories.dead_letter(queue_item=factories.queue_item("products", "2002"))
    out = heal()
    assert "resolved 2 products dead letter(s) a newer version overtook" in out
    resolutions = {d.pk: (d.resolution, d.resolved_by) for d in DeadLetter.objects.all()}
    assert resolutions == {
        overtaken.pk: (DeadLetter.Resolution.SUPERSEDED, "heal"),
        caught_up.pk: (DeadLetter.Resolution.SUPERSEDED, "heal"),
        newer.pk: ("", ""),
        not_stored.pk: ("", ""),
    }
