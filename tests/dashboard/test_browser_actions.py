"""The action log in a real browser: an operator changes a configuration value on its admin page and
replays a dead letter with the dashboard's button, then finds both in the action log page, and the
value's change in the key's history on its configuration page."""

from __future__ import annotations

from django.utils import timezone

from tdscore.models import Configuration

from .conftest import dead_lettered
from .test_browser import browser, log_in, pytestmark, screenshot  # noqa: F401 - the fixture and the marks


def test_an_operator_finds_what_they_did_in_the_action_log(browser, live_server, staff_user):  # noqa: F811
    dead = dead_lettered("invoices", "4815000000051234", at=timezone.now(), error="Zoho answered 500")
    row = Configuration.objects.get(key="batch_size")
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/tdscore/configuration/{row.pk}/change/")
    page.fill("#id_value", "250")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was changed successfully")

    page.goto(f"{live_server.url}/dashboard/")
    page.locator(f"#dead-letters form[action$='/dead-letter/{dead.pk}/retry'] button").click()
    page.wait_for_selector(f"text=Dead letter #{dead.pk} replayed")

    page.click("header nav >> text=Action log")
    page.wait_for_url(f"{live_server.url}/dashboard/actions")
    rows = page.locator("#actions tbody tr")
    assert rows.count() == 2
    replay, change = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    assert "dead_letter.replay" in replay and f"dead letter #{dead.pk}" in replay and "dashboard" in replay
    assert "configuration.change" in change and "batch_size" in change and "100 → 250" in change
    assert "operator" in replay and "operator" in change
    screenshot(page, "action-log")

    page.click("#actions tbody >> text=batch_size")  # a target's own history
    page.wait_for_selector("text=filtered")
    assert page.locator("#actions tbody tr").count() == 1
    screenshot(page, "action-log-key")

    page.goto(f"{live_server.url}/admin/tdscore/configuration/{row.pk}/change/")
    history = page.locator(".tds-key-history li")
    assert history.count() == 1
    assert "operator (admin)" in history.inner_text() and "100" in history.inner_text()
    screenshot(page, "config-history")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{live_server.url}/dashboard/actions")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "action-log-phone")
    page.close()
