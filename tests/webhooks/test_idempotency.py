"""Repeats are counted on one inbox row and applied once; a reused explicit key is 409; a derived key
never hides a revert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from erp.models import Product
from sync import queue
from sync.models import AuditTrail, InboxEvent, QueueItem
from sync.payloads import content_hash
from tests.webhooks.conftest import deliver

pytestmark = pytest.mark.django_db

ITEM = {"item_id": "42", "name": "Widget", "last_modified_time": "2026-06-09T09:45:41-0400"}


def test_three_identical_deliveries_make_one_row_and_one_queue_row(client):
    answers = []
    for second in (0, 1, 2):
        with time_machine.travel(datetime(2026, 6, 9, 14, 0, second, tzinfo=UTC), tick=False):
            answers.append(deliver(client, "products", ITEM))
    first_id = answers[0].json()["event_id"]
    assert [a.status_code for a in answers] == [202, 200, 200]
    assert answers[2].json() == {"status": "duplicate", "event_id": first_id, "duplicate": True}
    event = InboxEvent.objects.get()
    assert event.duplicate_count == 2
    assert event.last_duplicate_at == datetime(2026, 6, 9, 14, 0, 2, tzinfo=UTC)
    assert QueueItem.objects.count() == 1


def test_derived_key_is_entity_object_and_content_hash(client):
    deliver(client, "products", {"item": ITEM})
    assert InboxEvent.objects.get().idempotency_key == f"products:42:{content_hash(ITEM)}"


def test_envelope_and_bare_object_are_the_same_delivery(client):
    deliver(client, "products", {"code": 0, "item": ITEM})
    assert deliver(client, "products", ITEM).status_code == 200


def test_changed_content_is_a_new_delivery(client):
    deliver(client, "products", ITEM)
    assert deliver(client, "products", {**ITEM, "name": "Renamed"}).status_code == 202
    assert InboxEvent.objects.count() == QueueItem.objects.count() == 2


def test_delete_after_an_upsert_of_the_same_body_is_not_a_duplicate(client):
    deliver(client, "products", ITEM)
    assert deliver(client, "products", ITEM, method="DELETE").status_code == 202
    assert list(QueueItem.objects.order_by("id").values_list("operation", flat=True)) == ["upsert", "delete"]


def test_idempotency_key_header_is_the_key(client):
    deliver(client, "products", ITEM, **{"Idempotency-Key": "zoho-delivery-1"})
    assert InboxEvent.objects.get().idempotency_key == "zoho-delivery-1"
    assert deliver(client, "products", ITEM, **{"Idempotency-Key": "zoho-delivery-1"}).status_code == 200


def test_idempotency_key_wins_over_webhook_id(client):
    deliver(client, "products", ITEM, **{"Idempotency-Key": "k-1", "webhook-id": "msg-1"})
    assert InboxEvent.objects.get().idempotency_key == "k-1"


def test_reused_idempotency_key_with_another_body_is_409_and_changes_nothing(client):
    first = deliver(client, "products", ITEM, **{"Idempotency-Key": "k-1"})
    response = deliver(client, "products", {**ITEM, "name": "Other"}, **{"Idempotency-Key": "k-1"})
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"
    assert response.json()["event_id"] == first.json()["event_id"]
    event = InboxEvent.objects.get()
    assert (event.duplicate_count, event.last_duplicate_at) == (0, None)
    assert event.content_hash == content_hash(ITEM)
    assert QueueItem.objects.count() == 1


def test_reused_webhook_id_with_another_body_is_409(client):
    deliver(client, "products", ITEM, **{"webhook-id": "msg-1"})
    response = deliver(client, "products", {**ITEM, "name": "Other"}, **{"webhook-id": "msg-1"})
    assert response.status_code == 409


UNVERSIONED_A = {"item_id": "42", "name": "A"}
UNVERSIONED_B = {"item_id": "42", "name": "B"}


def drain() -> None:
    call_command("process_queue", "--once")


def test_unversioned_revert_is_a_new_change_and_the_erp_ends_at_it(client):
    answers = [deliver(client, "products", body).status_code for body in (UNVERSIONED_A, UNVERSIONED_B, UNVERSIONED_A)]
    assert answers == [202, 202, 202]
    drain()
    assert Product.objects.get(zoho_id="42").name == "A"
    assert list(QueueItem.objects.order_by("id").values_list("status", flat=True)) == ["completed"] * 3


def test_unversioned_change_repeated_in_a_row_is_one_row_and_one_application(client):
    assert [deliver(client, "products", UNVERSIONED_A).status_code for _ in range(2)] == [202, 200]
    drain()
    assert (InboxEvent.objects.count(), QueueItem.objects.count(), AuditTrail.objects.count()) == (1, 1, 1)


def test_a_revert_repeated_is_a_duplicate_of_the_revert(client):
    for body in (UNVERSIONED_A, UNVERSIONED_B, UNVERSIONED_A):
        deliver(client, "products", body)
    again = deliver(client, "products", UNVERSIONED_A)
    assert again.status_code == 200
    assert QueueItem.objects.count() == 3


def test_a_revert_after_a_pulled_change_is_a_new_change(client):
    deliver(client, "products", UNVERSIONED_A)
    queue.enqueue(
        entity="products",
        object_id="42",
        payload=UNVERSIONED_B,
        content_hash=content_hash(UNVERSIONED_B),
        version=None,
        source=QueueItem.Source.PULL,
        now=timezone.now(),
    )
    assert deliver(client, "products", UNVERSIONED_A).status_code == 202
    drain()
    assert Product.objects.get(zoho_id="42").name == "A"


def test_an_upsert_after_a_delete_of_the_same_body_is_not_a_duplicate(client):
    deliver(client, "products", UNVERSIONED_A)
    deliver(client, "products", UNVERSIONED_A, method="DELETE")
    assert deliver(client, "products", UNVERSIONED_A).status_code == 202
    assert list(QueueItem.objects.order_by("id").values_list("operation", flat=True)) == ["upsert", "delete", "upsert"]


def test_a_versioned_redelivery_is_a_duplicate_wherever_it_arrives(client):
    newer = {**ITEM, "last_modified_time": "2026-06-09T10:00:00-0400"}
    deliver(client, "products", ITEM)
    deliver(client, "products", newer)
    assert deliver(client, "products", ITEM).status_code == 200
