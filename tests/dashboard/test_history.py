"""An ERP row's provenance and history: the admin's links and GET /api/erp/<entity>/<zoho_id>/history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from erp.models import Invoice
from sync import queue, retention, worker
from sync.models import AuditTrail, DeadLetter, InboxEvent, QueueItem
from tdscore.actions import Actor, Via
from tests import factories
from tests.handlers.conftest import sample

pytestmark = pytest.mark.django_db

TOKEN = "history-token"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
INVOICE = {**sample("books-invoice"), "last_modified_time": "2026-11-02T08:00:00+0000"}
ZOHO_ID = INVOICE["invoice_id"]
URL = f"/api/erp/invoices/{ZOHO_ID}/history"


@pytest.fixture(autouse=True)
def webhook_token(settings):
    settings.TDS_WEBHOOK_TOKEN = [TOKEN]


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield lambda **delta: traveller.shift(timedelta(**delta))


def deliver(client, body: dict, method: str = "POST") -> int:
    answer = client.generic(
        method, "/webhooks/invoices", json.dumps(body), content_type="application/json", HTTP_X_TDS_TOKEN=TOKEN
    )
    assert answer.status_code == 202, answer.content
    worker.drain(None, worker_id="history-test", once=True)
    return answer.json()["event_id"]


def edited(stamp: str, **fields) -> dict:
    return {**INVOICE, "last_modified_time": stamp, **fields}


def test_the_invoice_page_links_to_its_webhook_body_in_one_request(client, clock, staff_user):
    event_id = deliver(client, INVOICE)
    client.force_login(staff_user)
    page = client.get(reverse("admin:erp_invoice_change", args=[Invoice.objects.get().pk])).content.decode()
    assert "Current version written by" in page
    assert reverse("admin:sync_inboxevent_change", args=[event_id]) in page
    assert reverse("admin:sync_audittrail_object", args=["invoices", ZOHO_ID]) in page


def test_the_api_gives_the_ids_of_the_queue_and_inbox_rows(client, clock, api_client):
    event_id = deliver(client, INVOICE)
    (version,) = api_client.get(URL).json()["versions"]
    item = QueueItem.objects.get()
    assert (version["operation"], version["source"]) == ("create", "webhook")
    assert (version["queue_item_id"], version["inbox_event_id"], version["run_id"]) == (item.pk, event_id, None)
    assert version["links"]["inbox_event"]["url"] == reverse("admin:sync_inboxevent_change", args=[event_id])


def test_history_and_as_of_across_create_updates_and_delete(client, clock, api_client):
    deliver(client, INVOICE)
    clock(hours=1)
    deliver(client, edited("2026-11-02T09:30:00+0000", status="overdue"))
    clock(hours=1)
    deliver(client, edited("2026-11-02T10:30:00+0000", status="void"))
    clock(hours=1)
    deliver(client, edited("2026-11-02T11:30:00+0000"), method="DELETE")
    versions = api_client.get(URL).json()["versions"]
    assert [v["operation"] for v in versions] == ["create", "update", "update", "delete"]
    assert versions[1]["changed_fields"] == ["status"]
    assert (versions[1]["before"]["status"], versions[1]["after"]["status"]) == (INVOICE["status"], "overdue")

    def state(at: datetime):
        return api_client.get(URL, {"as_of": at.isoformat()}).json()["state"]

    assert state(T0 - timedelta(minutes=30)) is None
    assert state(T0 + timedelta(minutes=30))["status"] == INVOICE["status"]
    assert state(T0 + timedelta(minutes=90))["status"] == "overdue"
    assert state(T0 + timedelta(minutes=150))["status"] == "void"
    assert state(T0 + timedelta(minutes=210)) is None


def test_a_bad_as_of_is_400_and_an_unknown_object_or_entity_is_404(client, clock, api_client):
    deliver(client, INVOICE)
    bad = api_client.get(URL, {"as_of": "yesterday"})
    assert bad.status_code == 400 and bad.json()["status"] == "error"
    assert api_client.get("/api/erp/invoices/never-seen/history").status_code == 404
    assert api_client.get(f"/api/erp/nothing/{ZOHO_ID}/history").json()["error"] == "not_found"


def test_history_needs_view_permission_on_the_erp_model(client, clock, django_user_model):
    deliver(client, INVOICE)
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    client.force_login(clerk)
    assert client.get(URL).status_code == 403


def dead_lettered(**fields) -> DeadLetter:
    item = factories.queue_item(**fields)
    QueueItem.objects.filter(pk=item.pk).update(status=QueueItem.Status.DEAD_LETTER)
    return factories.dead_letter(queue_item=item)


def test_a_replayed_change_names_who_replayed_it(client, clock, api_client, staff_user):
    letter = dead_lettered(entity="invoices", object_id=ZOHO_ID, payload=INVOICE)
    assert api_client.post(f"/api/dashboard/dead-letter/{letter.pk}/retry").status_code == 202
    worker.drain(None, worker_id="history-test", once=True)
    (version,) = api_client.get(URL).json()["versions"]
    assert version["actor"] == staff_user.username
    assert DeadLetter.objects.get().resolved_by == staff_user.username


def test_a_link_to_a_cleaned_up_inbox_row_says_so_with_the_date(client, clock, api_client, staff_user):
    event_id = deliver(client, INVOICE)
    clock(days=30)
    retention.cleanup(now=datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    assert not InboxEvent.objects.exists()
    (version,) = api_client.get(URL).json()["versions"]
    assert version["links"]["inbox_event"] == {
        "id": event_id,
        "exists": False,
        "cleaned_up_at": "2026-12-02T09:00:00Z",
        "url": None,
    }
    client.force_login(staff_user)
    audit = AuditTrail.objects.get()
    page = client.get(reverse("admin:sync_audittrail_change", args=[audit.pk])).content.decode()
    assert f"inbox #{event_id} cleaned up on 2026-12-02 09:00" in page


def test_the_history_page_lists_every_version(client, clock, staff_user):
    deliver(client, INVOICE)
    clock(hours=1)
    deliver(client, edited("2026-11-02T09:30:00+0000", status="overdue"))
    client.force_login(staff_user)
    page = client.get(reverse("admin:sync_audittrail_object", args=["invoices", ZOHO_ID])).content.decode()
    assert page.count("(webhook)") == 2 and "overdue" in page


def test_replay_keeps_the_queue_row_and_records_its_requester():
    assert queue.replay(dead_lettered(), actor=Actor("alice", Via.API)).requested_by == "alice"


def test_as_of_with_an_offset_typed_unencoded_is_read(client, clock, api_client):
    deliver(client, INVOICE)
    answer = api_client.get(f"{URL}?as_of=2026-11-02T10:30:00+01:00")
    assert answer.status_code == 200 and answer.json()["state"]["status"] == INVOICE["status"]
