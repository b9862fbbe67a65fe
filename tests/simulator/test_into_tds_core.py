"""The simulator's webhooks land in TDS Core's own receiver (a live server), each auth scheme accepted."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from sync.models import InboxEvent, QueueItem
from zohosim import ZohoSimulator
from zohosim.webhooks import zoho_signature

pytestmark = pytest.mark.django_db(transaction=True)


def test_token_authenticated_push_is_accepted_and_kept(live_server, settings):
    settings.TDS_WEBHOOK_TOKEN = ["tds-token"]
    sim = ZohoSimulator(webhook_target=live_server.url, webhook_token="tds-token")
    invoice = sim.seed("invoices", 1)[0]
    answer = sim.push_webhook("invoices", invoice)
    assert answer.status_code == 202, answer.text
    event = InboxEvent.objects.get(pk=answer.json()["event_id"])
    assert event.entity == "invoices"


@pytest.mark.parametrize("scheme", ["webhook_secret", "zoho_webhook_secret"])
def test_signed_push_is_accepted(live_server, settings, scheme):
    settings.TDS_WEBHOOK_SECRET = ["tds-secret-1"]
    settings.TDS_ZOHO_WEBHOOK_SECRET = ["TdsZohoSecret2026"]
    secret = "tds-secret-1" if scheme == "webhook_secret" else "TdsZohoSecret2026"
    sim = ZohoSimulator(webhook_target=live_server.url, **{scheme: secret})
    vendor = sim.seed("vendors", 1)[0]
    answer = sim.push_webhook("vendors", vendor, method="PUT")
    assert answer.status_code == 202, answer.text


def test_push_with_a_wrong_token_is_refused(live_server, settings):
    settings.TDS_WEBHOOK_TOKEN = ["tds-token"]
    sim = ZohoSimulator(webhook_target=live_server.url, webhook_token="stale")
    assert sim.push_webhook("products", sim.seed("products", 1)[0]).status_code == 401
    assert not InboxEvent.objects.exists()


@pytest.mark.parametrize("body_format", ["json-as-form", "form-json", "form"])
def test_every_body_format_is_accepted(live_server, settings, body_format):
    settings.TDS_ZOHO_WEBHOOK_SECRET = ["TdsZohoSecret2026"]
    sim = ZohoSimulator(webhook_target=live_server.url, zoho_webhook_secret="TdsZohoSecret2026")
    answer = sim.push_webhook("users", sim.seed("users", 1)[0], body_format=body_format)
    assert answer.status_code == 202, answer.text


def test_standard_webhooks_push_is_accepted(live_server, settings):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    settings.TDS_STANDARD_WEBHOOK_SECRET = [secret]
    sim = ZohoSimulator(webhook_target=live_server.url, standard_webhook_secret=secret)
    assert sim.push_webhook("bills", sim.seed("bills", 1)[0]).status_code == 202


def _form_delivery(live_server, query: dict, *, merged: bool) -> httpx.Response:
    body_form = {"user_id": "460000000000097", "name": "Kim", "last_modified_time": "2026-06-09T09:45:41-0400"}
    body = urlencode(body_form).encode()
    signature = zoho_signature("TdsZohoSecret2026", query, body, body_form, merged=merged)
    return httpx.post(
        f"{live_server.url}/webhooks/users?{urlencode(query)}",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Zoho-Webhook-Signature": signature},
    )


@pytest.mark.parametrize("merged", [True, False], ids=["query-and-form-sorted-together", "query-then-form"])
def test_a_zoho_signed_form_is_accepted_in_either_signing_order(live_server, settings, merged):
    settings.TDS_ZOHO_WEBHOOK_SECRET = ["TdsZohoSecret2026"]
    answer = _form_delivery(live_server, {"zone": "a", "batch": "7"}, merged=merged)
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("delete_via", ["DELETE", "POST"])
def test_a_deleted_rule_left_on_post_deletes_through_operation_delete(live_server, settings, delete_via):
    settings.TDS_ZOHO_WEBHOOK_SECRET = ["TdsZohoSecret2026"]
    sim = ZohoSimulator(webhook_target=live_server.url, zoho_webhook_secret="TdsZohoSecret2026")
    invoice = sim.seed("invoices", 1)[0]
    answer = sim.push_webhook("invoices", invoice, method="DELETE", delete_via=delete_via, body_format="json")
    assert answer.status_code == 202, answer.text
    event = InboxEvent.objects.get(pk=answer.json()["event_id"])
    assert event.method == delete_via
    row = QueueItem.objects.get(inbox_event=event)
    assert (row.operation, row.object_id) == (QueueItem.Operation.DELETE, invoice["invoice_id"])


def test_operation_upsert_on_the_url_overrides_a_delete_method(live_server, settings):
    settings.TDS_WEBHOOK_TOKEN = ["tds-token"]
    body = b'{"bill":{"bill_id":"99","last_modified_time":"2026-06-09T09:45:41-0400"}}'
    answer = httpx.request(
        "DELETE",
        f"{live_server.url}/webhooks/bills?operation=upsert&token=tds-token",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text
    assert QueueItem.objects.get(object_id="99").operation == QueueItem.Operation.UPSERT
