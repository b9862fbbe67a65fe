"""The dashboard in a real browser: Debian's chromium driven by Playwright against a live server.

An operator logs in, sees the charts drawn from the roll-ups, retries a dead letter and acknowledges
an alert with the page's buttons, watches the page refresh itself, opens the dead letter in the
admin, and reads the page on a phone. Screenshots go to tests/artifacts/ (TDS_TEST_ARTIFACTS moves
it), kept by CI as the run's artefacts. No browser download: the project installs `chromium` from
Debian (.ci/run) and points Playwright at it; without it the test skips, which CI=true fails.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.db import connections
from django.utils import timezone

from alerts.models import Alert
from dashboard.config_keys import DASHBOARD_REFRESH_SECONDS
from sync.models import DeadLetter, QueueItem
from tdscore import config
from tests import factories

from .conftest import dead_lettered
from .test_html import _no_cached_charts, seed_a_day_of_rollups  # noqa: F401 - an autouse fixture

CHROMIUM = os.environ.get("TDS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TDS_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "artifacts"))

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser(live_server, monkeypatch):
    """Chromium, closed before the live server stops so no request of its is cut off mid-way."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes between
    # browser steps are still synchronous code, so Django's async guard is told so.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()
        # The ORM calls made while Playwright's loop ran opened a connection in its context, where the
        # test database's teardown would not find it; closed here it cannot hold the database open.
        connections.close_all()


def screenshot(page, name: str) -> Path:
    path = ARTIFACTS / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/dashboard/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "operator")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/dashboard/")


def test_an_operator_works_the_dashboard_in_a_browser(browser, live_server, staff_user):
    staff_user.user_permissions.add(*Permission.objects.filter(codename__in=["view_deadletter", "view_queueitem"]))
    now = timezone.now()
    seed_a_day_of_rollups(now)
    for object_id in ("4815000000044208", "4815000000044209"):
        factories.queue_item("products", object_id, now=now - timedelta(minutes=2))
    dead = dead_lettered("invoices", "4815000000051234", at=now - timedelta(minutes=7), error="Zoho answered 500")
    alert = factories.alert(title="Queue backlog over threshold", severity=Alert.Severity.WARNING)
    factories.sync_cursor("products")
    page = browser.new_page(viewport={"width": 1366, "height": 900})

    log_in(page, live_server.url)

    charts = page.locator("figure.chart")
    assert charts.count() == 4
    for i in range(4):
        svg = charts.nth(i).locator("svg")
        assert svg.bounding_box()["width"] > 250
        assert svg.locator("path.line").count() >= 1
    assert page.locator("text=No data yet").count() == 0
    assert page.evaluate("typeof window.htmx") == "object"
    screenshot(page, "desktop")

    page.locator(f"#dead-letters form[action$='/dead-letter/{dead.pk}/retry'] button").click()
    page.wait_for_selector(f"text=Dead letter #{dead.pk} replayed")
    dead.refresh_from_db()
    assert (dead.resolution, dead.resolved_by) == (DeadLetter.Resolution.REPLAYED, "operator")
    assert QueueItem.objects.get(pk=dead.queue_item_id).status == QueueItem.Status.PENDING

    page.locator(f"#alerts form[action$='/alerts/{alert.pk}/acknowledge'] button").click()
    page.wait_for_selector(f"text=Alert #{alert.pk} acknowledged")
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (Alert.Status.ACKNOWLEDGED, "operator")
    screenshot(page, "after-actions")

    # The page refreshes its panels by itself: a dead letter that arrives later shows up unasked.
    config.update(DASHBOARD_REFRESH_SECONDS, 1)
    page.reload()
    late = dead_lettered("customers", "4815000000060001", at=timezone.now())
    page.wait_for_selector(f"#dead-letters a[href$='/deadletter/{late.pk}/change/']", timeout=10_000)

    # The console's lists fit a 1,366 px screen without scrolling sideways.
    for changelist in ("deadletter", "queueitem"):
        page.goto(f"{live_server.url}/admin/sync/{changelist}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366, changelist
    screenshot(page, "admin-queue")

    page.goto(f"{live_server.url}/admin/sync/deadletter/{late.pk}/change/")
    assert page.locator("h1").inner_text().startswith("View dead letter")
    payload = page.locator(".field-payload_shown pre.tds-pre")
    assert '\n  "item_id": "4815000000060001",' in payload.inner_text()
    assert payload.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    screenshot(page, "admin-dead-letter")

    page.click(".tds-actions button[value=replay_selected]")
    page.wait_for_selector("text=1 dead letter(s) replayed")
    late.refresh_from_db()
    assert (late.resolution, late.resolved_by) == (DeadLetter.Resolution.REPLAYED, "operator")


def test_the_dashboard_fits_a_phone_screen(browser, live_server, staff_user):
    now = timezone.now()
    seed_a_day_of_rollups(now)
    dead_lettered("invoices", "4815000000051234", at=now - timedelta(minutes=7))
    factories.alert()
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()

    log_in(page, live_server.url)

    # Nothing but the tables' own scroll boxes may be wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("figure.chart svg").first.bounding_box()["width"] <= 390
    for button in ("#dead-letters button >> text=Retry", "#alerts button >> text=Acknowledge"):
        box = page.locator(button).bounding_box()
        assert box["x"] + box["width"] <= 390, f"{button} is off the screen"
    screenshot(page, "phone")
    page.locator("#dead-letters").screenshot(path=str(ARTIFACTS / "dashboard-phone-dead-letters.png"))
    context.close()
