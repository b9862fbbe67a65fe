"""From an ERP invoice in the admin, in a real browser: its history page and the webhook body that wrote it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from erp.models import Invoice
from sync import worker
from tests.handlers.conftest import sample

from .test_browser import browser, log_in, screenshot  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "browser-history-token"
INVOICE = {**sample("books-invoice"), "last_modified_time": "2026-11-02T08:00:00+0000"}


def deliver(body: dict) -> int:
    answer = Client().post(
        "/webhooks/invoices", json.dumps(body), content_type="application/json", HTTP_X_TDS_TOKEN=TOKEN
    )
    assert answer.status_code == 202, answer.content
    worker.drain(None, worker_id="browser-history", once=True)
    return answer.json()["event_id"]


def test_an_operator_follows_an_invoice_to_its_history_and_webhook_body(request, live_server, staff_user, settings):
    chromium = request.getfixturevalue("browser")
    settings.TDS_WEBHOOK_TOKEN = [TOKEN]
    deliver(INVOICE)
    event_id = deliver({**INVOICE, "last_modified_time": "2026-11-02T09:30:00+0000", "status": "overdue"})
    invoice = Invoice.objects.get()
    page = chromium.new_page(viewport={"width": 1366, "height": 900})
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/erp/invoice/{invoice.pk}/change/")
    written = page.locator(".field-written_by")
    assert "update (webhook)" in written.inner_text()
    assert "customers 260815000000097001 awaited since" in page.locator(".field-references_awaited").inner_text()
    screenshot(page, "history-invoice")

    page.click("text=every version")
    page.wait_for_url("**/admin/sync/audittrail/object/invoices/**")
    rows = page.locator("#tds-object-history > tbody > tr")
    assert rows.count() == 2
    assert "overdue" in rows.first.inner_text()
    screenshot(page, "history-versions")

    rows.first.locator(f"text=webhook body (inbox #{event_id})").click()
    page.wait_for_url(f"**/admin/sync/inboxevent/{event_id}/change/")
    body = page.locator(".field-body_shown").inner_text()
    assert INVOICE["invoice_number"] in body and "overdue" in body
    screenshot(page, "history-webhook-body")
    page.close()
