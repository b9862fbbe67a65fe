"""No single row, whatever its content, stops claiming, lease recovery, the admin lists or
other entities' progress. A row that cannot be read or claimed is dead-lettered on its own.

The rows are planted with raw SQL, as they are still in a database that took them before the webhook
refused such versions: PostgreSQL holds timestamps (`infinity`, year 10000) that Python cannot load.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from erp.models import Customer, Product
from sync import queue
from sync.config_keys import LEASE_EXPIRY_LIMIT, LOCK_TIMEOUT_SECONDS
from sync.models import DeadLetter, InboxEvent, QueueItem
from tdscore import config
from tests.factories import inbox_event, product_payload, queue_item

pytestmark = pytest.mark.django_db


def planted_version(item: QueueItem, version: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tds_sync_queue SET version = %s::timestamptz WHERE id = %s", [version, item.pk])


def backlog_with_one_unreadable_version(version: str) -> QueueItem:
    """99 good product rows, one whose version Python cannot load among them, and customers behind."""
    now = timezone.now() - timedelta(seconds=5)
    for n in range(50):
        queue_item("products", f"{n}", now=now)
    bad = queue_item("products", "bad", now=now, inbox_event=inbox_event())
    planted_version(bad, version)
    for n in range(50, 99):
        queue_item("products", f"{n}", now=now)
    for n in range(5):
        queue_item("customers", f"c{n}", payload={"contact_id": f"c{n}", "contact_name": f"C {n}"}, now=now)
    return bad


@pytest.mark.postgres
@pytest.mark.parametrize("version", ["infinity", "10000-01-01 00:00:00+00", "-infinity"])
def test_a_version_python_cannot_load_is_dead_lettered_alone_and_the_drain_goes_on(version, capsys):
    bad = backlog_with_one_unreadable_version(version)
    call_command("process_queue", "--once")  # raised (exit 1) before

    assert "completed 104" in capsys.readouterr().out
    assert Product.objects.count() == 99 and Customer.objects.count() == 5
    assert not QueueItem.objects.exclude(status__in=QueueItem.FINISHED).exists()
    dead = DeadLetter.objects.get()
    assert (dead.queue_item_id, dead.reason, dead.object_id) == (bad.pk, DeadLetter.Reason.VALIDATION, "bad")
    assert "version" in dead.error and dead.payload["item_id"] == "bad"
    assert InboxEvent.objects.get(pk=bad.inbox_event_id).status == InboxEvent.Status.REJECTED
    # The row stays readable: its version reads as unknown rather than failing the query.
    assert QueueItem.objects.get(pk=bad.pk).version is None


@pytest.mark.postgres
def test_lease_recovery_goes_on_past_a_row_python_cannot_load():
    good, bad = queue_item("products", "1"), queue_item("products", "2")
    config.update_many({LOCK_TIMEOUT_SECONDS: 1, LEASE_EXPIRY_LIMIT: 1})
    now = timezone.now()
    batch = queue.claim_batch(worker_id="killed", now=now)
    assert len(batch.items) == 2
    planted_version(bad, "infinity")
    assert queue.recover_expired_leases(now=now + timedelta(seconds=2)) == 0  # both ran out: dead-lettered
    assert set(DeadLetter.objects.values_list("queue_item_id", "reason")) == {
        (good.pk, "lease_expired"),
        (bad.pk, "lease_expired"),
    }


def test_a_row_whose_payload_cannot_be_loaded_is_dead_lettered_alone(capsys):
    """The general net: a row the database returns but Python cannot turn into a QueueItem, here a
    JSON integer past Python's 4,300-digit limit for int()."""
    now = timezone.now() - timedelta(seconds=5)
    rows = [queue_item("products", f"{n}", now=now) for n in range(5)]
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE tds_sync_queue SET payload = %s{cast} WHERE id = %s",
            ['{"item_id": ' + "9" * 5000 + "}", rows[2].pk],
        )
    call_command("process_queue", "--once")
    assert "completed 4" in capsys.readouterr().out
    dead = DeadLetter.objects.get()
    assert (dead.queue_item_id, dead.reason, dead.payload) == (rows[2].pk, "validation", None)
    assert "payload" in dead.error
    assert QueueItem.objects.filter(pk=rows[2].pk).values_list("status", flat=True).get() == "dead_letter"
    assert Product.objects.count() == 4


@pytest.mark.postgres
def test_admin_lists_show_rows_whose_timestamps_python_cannot_load(client, superuser):
    bad = queue_item("products", "bad", payload=product_payload("bad"))
    planted_version(bad, "infinity")
    dead = DeadLetter.objects.create(entity="products", object_id="bad", reason="validation", payload={})
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tds_dead_letter_queue SET first_failed_at = '-infinity', last_failed_at = 'infinity' WHERE id = %s",
            [dead.pk],
        )
    client.force_login(superuser)
    assert client.get("/admin/sync/queueitem/").status_code == 200
    assert client.get(f"/admin/sync/queueitem/{bad.pk}/change/").status_code == 200
    assert client.get("/admin/sync/deadletter/").status_code == 200
