"""The HTML dashboard at /dashboard/: who may see it, what it shows, and what its buttons change."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from alerts.models import Alert
from monitoring.rollups import Series, minute_of
from sync import queue
from sync.models import DeadLetter, QueueItem
from tdscore.models import Metric
from tests import factories

from .conftest import dead_lettered, finished_row

pytestmark = pytest.mark.django_db

URL = "/dashboard/"


def seed_a_day_of_rollups(now: datetime) -> None:
    """24 hours of per-minute points as the roll-up writes them: a daily wave of traffic."""
    points = []
    start = minute_of(now) - timedelta(hours=24)
    for minute in range(24 * 60):
        at = start + timedelta(minutes=minute)
        wave = 20 + (minute % 240) // 8
        points += [
            Metric(name=Series.RECEIVED, value=wave, labels={"entity": "products"}, at=at),
            Metric(name=Series.APPLIED, value=wave - 1, labels={"entity": "products"}, at=at),
            Metric(name=Series.FAILED, value=minute % 90 == 0, labels={"entity": "products"}, at=at),
            Metric(name=Series.QUEUE_DEPTH, value=(minute % 120) / 4, labels={}, at=at),
            Metric(name=Series.DLQ_SIZE, value=minute // 360, labels={}, at=at),
            Metric(name=Series.LATENCY_P95, value=0.8 + (minute % 60) / 40, labels={}, at=at),
            Metric(name=Series.LATENCY_P50, value=0.3, labels={}, at=at),
            Metric(name=Series.ROLLED_UP, value=10, labels={}, at=at),
            Metric(name=Series.LATENCY_BUCKET, value=wave - 3, labels={"le": "1"}, at=at),
            Metric(name=Series.LATENCY_BUCKET, value=2, labels={"le": "5"}, at=at),
        ]
    Metric.objects.bulk_create(points)


@pytest.fixture(autouse=True)
def _no_cached_charts():
    # Drawings are cached per rolled-up minute; each test's minute holds different points.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def page(client: Client) -> str:
    response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "next=/dashboard/" in response["Location"]


def test_users_who_are_not_staff_are_sent_to_the_login_page(client):
    client.force_login(factories.user("clerk"))
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_tiles_show_the_last_hour_and_the_queue(staff, now):
    finished_row("products", "1", received=now - timedelta(minutes=10), finished=now - timedelta(minutes=9))
    dead_lettered("products", "2", at=now - timedelta(minutes=5))
    factories.queue_item("invoices", "3", now=now - timedelta(minutes=3))
    factories.alert()

    html = page(staff)

    assert tile(html, "Received") == "2"
    assert tile(html, "Applied") == "1"
    assert tile(html, "Failed") == "1"
    assert tile(html, "Success rate") == "50.0%"
    assert tile(html, "Queue depth") == "1"
    assert tile(html, "Oldest pending") == "3 min"
    assert tile(html, "Dead letters") == "1"
    assert tile(html, "Open alerts") == "1"
    assert tile(html, "Zoho calls today") == "0"


def test_a_tiles_tone_is_its_css_class(staff, now):
    dead_lettered("products", "2", at=now - timedelta(minutes=5))

    html = page(staff)

    assert tile_class(html, "Dead letters") == "tile bad"
    assert tile_class(html, "Open alerts") == "tile good"
    assert tile_class(html, "Queue depth").strip() == "tile"


def test_freshness_p95_is_shown_per_entity(staff, now):
    finished_row(
        "invoices",
        "1",
        received=now - timedelta(minutes=2),
        finished=now - timedelta(minutes=1),
        version=now - timedelta(minutes=1, seconds=4),
    )
    html = page(staff)
    freshness = html[html.index("Freshness p95") :]
    # 4 s after Zoho's change, 60 s after the webhook: each p95 within its histogram bucket.
    found = re.search(r"<dt>invoices</dt><dd[^>]*>([\d.]+) s</dd><dd[^>]*>([\d.]+) s after the webhook</dd>", freshness)
    assert found, freshness[:600]
    assert 2 <= float(found.group(1)) <= 5
    assert 30 <= float(found.group(2)) <= 60


def tile(html: str, label: str) -> str:
    found = re.search(rf'<div class="label">{re.escape(label)}</div>\s*<div class="value">([^<]*)</div>', html)
    assert found, f"no tile {label!r}"
    return found.group(1)


def tile_class(html: str, label: str) -> str:
    found = re.search(rf'<div class="([^"]*)">\s*<div class="label">{re.escape(label)}</div>', html)
    assert found, f"no tile {label!r}"
    return found.group(1)


def test_the_four_charts_are_inline_svg_drawn_from_the_rollups(staff, now):
    seed_a_day_of_rollups(now)
    html = page(staff)
    charts = re.findall(r"<figure class=\"chart\">.*?</figure>", html, re.S)
    assert [re.search(r"<figcaption>([^<]*)", chart).group(1).strip() for chart in charts] == [
        "Throughput (changes per minute)",
        "Queue depth",
        "End-to-end latency",
        "Failure rate",
    ]
    for chart in charts:
        assert "<svg" in chart and "No data yet" not in chart
        assert re.search(r'<path d="M[\d.]+ [\d.]+ L', chart), "a drawn line"


def test_charts_say_no_data_before_the_first_rollup(staff, now):
    assert page(staff).count("No data yet") == 4


def test_a_new_rollup_redraws_the_charts(staff, now):
    seed_a_day_of_rollups(now - timedelta(minutes=1))
    before = page(staff)
    Metric.objects.bulk_create(
        [
            Metric(name=Series.QUEUE_DEPTH, value=900, labels={}, at=minute_of(now)),
            Metric(name=Series.ROLLED_UP, value=2, labels={}, at=minute_of(now)),
        ]
    )
    after = page(staff)
    assert max(y_labels(before, "Queue depth")) < 100
    assert max(y_labels(after, "Queue depth")) >= 800


def y_labels(html: str, title: str) -> list[float]:
    start = html.index(f"<figcaption>{title} ")
    chart = html[start : html.index("</figure>", start)]
    axis = re.search(r'<g class="axis y[^"]*">(.*?)</g></g>', chart).group(1)
    return [float(label.replace(",", "")) for label in re.findall(r"<title>([\d,.]+)</title>", axis)]


def test_nothing_on_the_page_is_fetched_from_another_host(staff, now):
    seed_a_day_of_rollups(now)
    html = page(staff)
    fetched = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', html)
    assert fetched and all(url.startswith("/static/") for url in fetched), fetched
    # pygal's own tooltip script would come from a CDN: it is switched off.
    assert "<script" not in html.replace('<script src="/static/django_htmx/', "")
    assert not [url for url in re.findall(r'(?:href|src)="([^"]*)"', html) if "//" in url]


def test_the_page_refreshes_its_panels_through_htmx(staff, now):
    html = page(staff)
    assert '<script src="/static/django_htmx/htmx-2.min.js"' in html
    assert re.search(r'id="panels" hx-get="/dashboard/" hx-trigger="every \d+s"', html)
    partial = staff.get(URL, headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<div id="panels"') and "<html" not in partial
    assert "Dead letters" in partial


def test_the_htmx_script_is_served_locally(staff):
    assert staff.get("/static/django_htmx/htmx-2.min.js").status_code == 200
    assert staff.get("/static/dashboard/dashboard.css").status_code == 200


def test_the_page_is_laid_out_for_a_phone(staff, now):
    html = page(staff)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    css = b"".join(staff.get("/static/dashboard/dashboard.css").streaming_content).decode()
    assert "@media (max-width: 600px)" in css


def test_the_tables_list_events_dead_letters_alerts_runs_and_cursors(staff, now):
    event = factories.queue_item("products", "ev-1", now=now)
    dead = dead_lettered("invoices", "dl-1", at=now)
    alert = factories.alert(title="Queue backlog over threshold")
    run = factories.sync_run("customers")
    factories.sync_cursor("vendors")

    html = page(staff)

    assert section(html, "events").count("ev-1") == 1
    assert reverse("admin:sync_queueitem_change", args=[event.pk]) in section(html, "events")
    assert reverse("dashboard:dead-letter-retry", args=[dead.pk]) in section(html, "dead-letters")
    assert reverse("dashboard:alert-acknowledge", args=[alert.pk]) in section(html, "alerts")
    assert reverse("admin:sync_syncrun_change", args=[run.pk]) in section(html, "runs")
    assert "vendors" in section(html, "cursors")


def section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start : html.index("</section>", start)]


def test_an_ingest_dead_letter_offers_discard_but_no_retry(staff, now):
    dead = queue.dead_letter_at_ingest(
        inbox_event=factories.inbox_event(), entity="products", payload={}, error="no item_id", now=now
    )
    dead_letters = section(page(staff), "dead-letters")
    assert reverse("dashboard:dead-letter-discard", args=[dead.pk]) in dead_letters
    assert reverse("dashboard:dead-letter-retry", args=[dead.pk]) not in dead_letters


# --- The buttons -------------------------------------------------------------------------------------


def test_retry_replays_the_dead_letter_as_the_cli_would(staff, staff_user, now):
    dead = dead_lettered()
    response = staff.post(reverse("dashboard:dead-letter-retry", args=[dead.pk]), follow=True)
    assert response.redirect_chain == [(URL, 302)]
    assert f"Dead letter #{dead.pk} replayed" in response.content.decode()
    dead.refresh_from_db()
    assert (dead.resolution, dead.resolved_by, dead.resolved_at) == ("replayed", "operator", now)
    assert QueueItem.objects.get(pk=dead.queue_item_id).status == QueueItem.Status.PENDING


def test_retrying_a_resolved_dead_letter_says_who_resolved_it(staff, now):
    dead = dead_lettered()
    queue.discard(dead, actor=factories.actor("someone-else"), now=now)
    response = staff.post(reverse("dashboard:dead-letter-retry", args=[dead.pk]), follow=True)
    assert "already discarded by someone-else" in response.content.decode()
    dead.refresh_from_db()
    assert dead.resolution == DeadLetter.Resolution.DISCARDED
    assert QueueItem.objects.get(pk=dead.queue_item_id).status == QueueItem.Status.DEAD_LETTER


def test_discard_resolves_the_dead_letter_and_leaves_the_row_dead(staff, now):
    dead = dead_lettered()
    response = staff.post(reverse("dashboard:dead-letter-discard", args=[dead.pk]), follow=True)
    assert f"Dead letter #{dead.pk} discarded" in response.content.decode()
    dead.refresh_from_db()
    assert (dead.resolution, dead.resolved_by) == ("discarded", "operator")
    assert QueueItem.objects.get(pk=dead.queue_item_id).status == QueueItem.Status.DEAD_LETTER
    assert reverse("dashboard:dead-letter-discard", args=[dead.pk]) not in page(staff)


def test_acknowledge_records_who_and_when(staff, now):
    alert = factories.alert()
    response = staff.post(reverse("dashboard:alert-acknowledge", args=[alert.pk]), follow=True)
    assert f"Alert #{alert.pk} acknowledged" in response.content.decode()
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.acknowledged_at) == ("acknowledged", "operator", now)
    assert reverse("dashboard:alert-acknowledge", args=[alert.pk]) not in section(page(staff), "alerts")


def test_acknowledging_a_resolved_alert_is_refused_with_the_reason(staff, now):
    alert = factories.alert()
    alert.resolve(actor=factories.actor("engine"), now=now)
    response = staff.post(reverse("dashboard:alert-acknowledge", args=[alert.pk]), follow=True)
    assert f"alert {alert.pk} is resolved, not open" in response.content.decode()
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and not alert.acknowledged_by


def test_the_buttons_answer_only_posts(staff, now):
    dead = dead_lettered()
    assert staff.get(reverse("dashboard:dead-letter-retry", args=[dead.pk])).status_code == 405
    dead.refresh_from_db()
    assert dead.resolved_at is None


def test_a_post_without_the_csrf_token_is_refused(staff_user, now):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    dead = dead_lettered()
    assert client.post(reverse("dashboard:dead-letter-discard", args=[dead.pk])).status_code == 403
    dead.refresh_from_db()
    assert dead.resolved_at is None


def test_a_user_who_is_not_staff_cannot_press_the_buttons(client, now):
    client.force_login(factories.user("clerk"))
    dead, alert = dead_lettered(), factories.alert()
    client.post(reverse("dashboard:dead-letter-discard", args=[dead.pk]))
    client.post(reverse("dashboard:alert-acknowledge", args=[alert.pk]))
    dead.refresh_from_db()
    alert.refresh_from_db()
    assert dead.resolved_at is None and alert.status == Alert.Status.OPEN


def test_a_button_for_a_row_that_is_gone_answers_404(staff):
    assert staff.post(reverse("dashboard:dead-letter-retry", args=[999999])).status_code == 404
