"""The admin's bulk replay in a real browser: select dead letters, see what each replay would do to
the ERP (nothing written yet), confirm, and they are replayed."""

from __future__ import annotations

import pytest
from django.utils import timezone

from erp.models import Invoice
from sync import worker
from sync.models import DeadLetter
from tests.queue.test_replay_preview import dead_letter, invoice, stored

from .test_browser import browser, log_in, screenshot  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_admins_bulk_replay_shows_the_preview_and_replays_on_confirmation(browser, live_server, superuser):  # noqa: F811
    stored(invoice(0, status="sent", total=598))
    good = dead_letter(invoice(5, status="paid", total=650, balance=0))
    broken = dead_letter(invoice(6, date="the ninth of June") | {"invoice_id": "78"})
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")

    page.goto(f"{live_server.url}/admin/sync/deadletter/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "replay_selected")
    page.click("button[name=index]")

    page.wait_for_selector("text=Replay these dead letters?")
    table = page.locator("#tds-replay-preview")
    assert "would apply: " in table.inner_text() and "would fail again: ValidationFailed" in table.inner_text()
    assert table.locator("tr.tds-preview-apply td", has_text="status").count() == 1
    screenshot(page, "replay-preview")
    assert DeadLetter.objects.unresolved().count() == 2  # nothing written before the confirmation

    page.click("input[value='Yes, replay 2 dead letters']")
    page.wait_for_selector("text=2 dead letter(s) replayed")
    assert DeadLetter.objects.filter(pk__in=[good.pk, broken.pk], resolution="replayed").count() == 2
    while worker.process_batch("w", timezone.now()):
        pass
    assert Invoice.objects.get(zoho_id="77").status == "paid"
