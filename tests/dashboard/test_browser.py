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
    page.click("text=Yes, replay 1 dead letter")  # the confirmation, with what the replay would do
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


# --- Fit: every column in view at 1,280 px and on a 390 px phone ----------------------------------------

# For each table in view: does it overflow its box, and is each column's header visible? A table laid
# out as cards (the dashboard's on a phone) names its columns in each cell's label instead of its head.
FIT_PROBLEMS = """() => {
  const width = document.documentElement.clientWidth, problems = [];
  if (document.documentElement.scrollWidth > width + 1)
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${width} px window`);
  for (const table of document.querySelectorAll('table')) {
    if (!table.offsetParent || !table.tHead) continue;
    const name = table.id || table.closest('[id]')?.id || 'table';
    const box = table.parentElement;
    if (table.scrollWidth > box.clientWidth + 1)
      problems.push(`${name}: ${table.scrollWidth} px in a ${box.clientWidth} px box`);
    const headers = [...table.tHead.querySelectorAll('th')].map(th => [th, th.textContent.trim()]).filter(([, t]) => t);
    if (getComputedStyle(table.tHead).display === 'none') {
      const row = [...(table.tBodies[0]?.rows || [])].find(r => r.cells.length === table.tHead.rows[0].cells.length);
      if (!row) continue;  // nothing listed: no field to name
      const labels = [...row.cells].filter(td => td.offsetParent)
        .map(td => getComputedStyle(td, '::before').content)
        .map((content, i) => content.startsWith('attr(') ? row.cells[i].dataset.label : content.replace(/^"|"$/g, ''));
      for (const [, text] of headers)
        if (!labels.includes(text)) problems.push(`${name}: column "${text}" has no visible label`);
      continue;
    }
    for (const [th, text] of headers) {
      const r = th.getBoundingClientRect();
      if (!th.offsetParent || r.width < 1) problems.push(`${name}: column "${text}" is hidden`);
      else if (r.left < -1 || r.right > width + 1) problems.push(`${name}: column "${text}" is off the screen (${Math.round(r.left)}–${Math.round(r.right)} px)`);
    }
  }
  return problems;
}"""

LONG_ERROR = (
    "Zoho answered 400 (code 1001): the line item 4815000000099001 refers to a tax that no longer exists in "
    "the organisation; the invoice cannot be stored until the tax is restored or the line edited"
)


@pytest.mark.parametrize(("width", "height", "name"), [(1280, 900, "1280"), (390, 844, "phone")])
def test_the_dashboard_and_the_changelists_fit_the_screen(browser, live_server, superuser, width, height, name):
    now = timezone.now()
    seed_a_day_of_rollups(now)
    for n in range(4):
        dead_lettered("sales-orders", f"48150000000512{n:02d}", at=now - timedelta(minutes=n), error=LONG_ERROR)
        item = factories.queue_item("credit-notes", f"48150000000600{n:02d}", now=now - timedelta(minutes=n))
        QueueItem.objects.filter(pk=item.pk).update(status=QueueItem.Status.RETRY, last_error=LONG_ERROR, attempts=3)
    factories.alert(title="Freshness of credit-notes: p95 88,864 s over the threshold of 900 s for 30 minutes")
    factories.sync_cursor("sales-orders")  # and its run
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 600)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/dashboard/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")

    found = {}
    for shot, path in (
        ("dashboard", "/dashboard/"),
        ("queue", "/admin/sync/queueitem/"),
        ("dead-letters", "/admin/sync/deadletter/"),
    ):
        page.goto(f"{live_server.url}{path}")
        # Charts and the refreshed panels settle before the boxes are measured, on a busy machine too.
        page.wait_for_load_state("networkidle")
        screenshot(page, f"fit-{name}-{shot}")
        found[shot] = page.evaluate(FIT_PROBLEMS)
        if shot == "dashboard":  # the panels alone, readable at their own size
            for panel in ("dead-letters", "entities", "events"):
                page.locator(f"#{panel}").screenshot(path=str(ARTIFACTS / f"dashboard-fit-{name}-{panel}.png"))
    context.close()
    assert found == {"dashboard": [], "queue": [], "dead-letters": []}, found
