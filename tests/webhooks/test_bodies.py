"""Every body form a webhook may take (docs/REFERENCE.md, "Entities"), and each real Zoho sample through its entity's endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
import time_machine

from sync.models import InboxEvent, QueueItem
from sync.payloads import content_hash
from tests.webhooks.conftest import deliver, sample

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
ITEM = {"item_id": "42", "name": "Widget", "rate": 12.5, "last_modified_time": "2026-06-09T09:45:41-0400"}


def queued() -> QueueItem:
    return QueueItem.objects.get()


def test_bare_json_object(client):
    assert deliver(client, "products", ITEM).status_code == 202
    assert (queued().object_id, queued().payload) == ("42", ITEM)


def test_envelope_is_unwrapped(client):
    assert deliver(client, "products", {"code": 0, "message": "success", "item": ITEM}).status_code == 202
    assert queued().payload == ITEM
    assert queued().content_hash == content_hash(ITEM)


def test_json_labelled_as_a_form_is_read_as_json(client):
    assert deliver(client, "products", {"item": ITEM}, content_type=FORM).status_code == 202
    assert queued().payload == ITEM


def test_json_as_text_plain(client):
    assert deliver(client, "products", ITEM, content_type="text/plain; charset=utf-8").status_code == 202
    assert queued().payload == ITEM


def test_form_whose_one_field_holds_json(client):
    body = urlencode({"JSONString": json.dumps({"item": ITEM})}).encode()
    assert deliver(client, "products", body, content_type=FORM).status_code == 202
    assert queued().payload == ITEM


def test_flat_form_becomes_an_object_of_strings(client):
    body = urlencode({"item_id": "42", "name": "Widget", "rate": "12.5"}).encode()
    assert deliver(client, "products", body, content_type=FORM).status_code == 202
    assert queued().payload == {"item_id": "42", "name": "Widget", "rate": "12.5"}


def test_form_pairs_under_a_json_label_are_unparseable(client):
    # Only a body labelled as a form is read as one; JSON is tried first for every label.
    assert deliver(client, "products", b"item_id=42&name=Widget").status_code == 400


def test_numeric_ids_become_exact_strings(client):
    # Zoho's doc examples carry ids past 2**53 as numbers: they must not pass through a float.
    body = b'{"item": {"item_id": 4815000000044208123, "name": "Big"}}'
    assert deliver(client, "products", body).status_code == 202
    assert queued().object_id == "4815000000044208123"


def test_version_is_parsed_from_last_modified_time(client):
    deliver(client, "products", ITEM)
    assert queued().version.isoformat() == "2026-06-09T13:45:41+00:00"


def test_version_falls_back_to_updated_time(client):
    deliver(client, "payments", {"payment": {"payment_id": "7", "updated_time": "2026-06-09T09:47:43-0400"}})
    assert queued().version.isoformat() == "2026-06-09T13:47:43+00:00"


def test_queue_row_links_its_inbox_row(client):
    response = deliver(client, "products", ITEM)
    row = queued()
    assert row.inbox_event_id == response.json()["event_id"]
    assert (row.source, row.status, row.entity) == ("webhook", "pending", "products")
    assert InboxEvent.objects.get().content_hash == row.content_hash


def test_newer_webhook_supersedes_an_older_waiting_one(client):
    deliver(client, "products", ITEM)
    deliver(client, "products", {**ITEM, "name": "Widget 2", "last_modified_time": "2026-06-09T10:00:00-0400"})
    older, newer = QueueItem.objects.order_by("id")
    assert (older.status, older.skip_reason) == ("skipped", "superseded")
    assert newer.status == "pending"


def test_superseded_webhook_s_inbox_row_is_processed(client):
    first = deliver(client, "products", ITEM).json()["event_id"]
    second = deliver(client, "products", {**ITEM, "last_modified_time": "2026-06-09T10:00:00-0400"}).json()["event_id"]
    assert InboxEvent.objects.get(pk=first).status == InboxEvent.Status.PROCESSED
    assert InboxEvent.objects.get(pk=second).status == InboxEvent.Status.QUEUED


def test_repeated_delivery_supersedes_nothing(client):
    newer = {**ITEM, "last_modified_time": "2026-06-09T10:00:00-0400"}
    deliver(client, "products", newer)
    deliver(client, "products", ITEM)  # older, arrived late: waits, and the worker will find it stale
    assert deliver(client, "products", newer).status_code == 200
    assert list(QueueItem.objects.values_list("status", flat=True)) == ["pending", "pending"]


def test_delete_without_a_version_is_versioned_at_its_receive_time_and_supersedes_older_rows(client):
    deliver(client, "products", ITEM)
    received = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
    with time_machine.travel(received, tick=False):
        deliver(client, "products", b"", method="DELETE", query="?item_id=42")
    upsert, delete = QueueItem.objects.order_by("id")
    assert (delete.operation, delete.version, delete.status) == ("delete", received, "pending")
    assert upsert.skip_reason == "superseded"


SAMPLES = [
    ("books-item", "products", "products", "260815000000100002"),
    ("books-contact", "customers", "customers", "260815000000097001"),
    ("books-invoice", "invoices", "invoices", "260815000000103001"),
    ("books-bill", "bills", "bills", "260815000000108002"),
    ("books-creditnote", "credit-notes", "credit-notes", "260815000000121027"),
    ("books-customerpayment", "payments", "payments", "260815000000113012"),
    ("inventory-item", "stock", "stock", "item:4815000000044208"),
    ("inventory-inventoryadjustment", "stock", "stock", "adjustment:4815000000044100"),
    ("inventory-salesorder", "sales-orders", "sales-orders", "4815000000044895"),
]


@pytest.mark.parametrize(("name", "endpoint", "entity", "object_id"), SAMPLES)
def test_real_zoho_sample_is_accepted(client, name, endpoint, entity, object_id):
    response = deliver(client, endpoint, sample(name))
    assert response.status_code == 202, response.content
    row = queued()
    assert (row.entity, row.object_id) == (entity, object_id)
    event = InboxEvent.objects.get()
    assert (event.entity, event.object_id, event.status) == (entity, object_id, "queued")


def test_vendor_contact_posted_to_customers_is_filed_under_vendors(client):
    body = sample("books-contact")
    body["contact"]["contact_type"] = "vendor"
    assert deliver(client, "customers", body).status_code == 202
    assert (queued().entity, queued().object_id) == ("vendors", "260815000000097001")
    assert InboxEvent.objects.get().entity == "vendors"
