"""The dashboard's controls of whole entities: a pause seen and undone, and runs started by a button, with
each refusal in words. The buttons call what the CLI, the admin and the API call (sync.queue.pause /
resume, dashboard.api.runs.start_sync)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from sync import pull, queue
from sync.config_keys import PAUSED_ENTITIES
from sync.models import QueueItem, SyncCursor, SyncRun
from sync.zoho.models import LimiterState
from tdscore import config
from tests import factories

from .test_html import page, section

pytestmark = pytest.mark.django_db

START = reverse("dashboard:run-start")


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def tile(html: str, label: str) -> str:
    start = html.index(f'<div class="label">{label}</div>')
    return html[start : html.index("</div>\n      </div>", start)]


# --- A paused entity, seen and undone ---------------------------------------------------------------


def test_a_paused_entity_shows_in_a_tile_and_a_badge_with_the_rows_it_holds(staff):
    for object_id in ("1", "2", "3"):
        factories.queue_item("invoices", object_id)
    factories.queue_item("products", "9")
    queue.pause(["invoices"], actor=factories.actor())

    html = page(staff)

    assert "invoices (3 held)" in tile(html, "Paused")
    entities = section(html, "entities")
    assert "invoices paused" in entities  # the panel's heading badge
    invoices = entities[entities.index(">invoices</td>") :].split("</tr>")[0]
    assert "paused" in invoices and "3 held" in invoices
    assert reverse("dashboard:entity-resume", args=["invoices"]) in invoices
    assert reverse("dashboard:entity-pause", args=["products"]) in entities


def test_with_nothing_paused_the_tile_says_every_entity_is_applied(staff):
    assert "every entity is applied" in tile(page(staff), "Paused")


def test_an_operator_pauses_and_resumes_an_entity_from_the_dashboard(staff):
    factories.queue_item("invoices", "1")

    response = staff.post(reverse("dashboard:entity-pause", args=["invoices"]), follow=True)

    assert "Paused invoices" in response.content.decode()
    assert config.get(PAUSED_ENTITIES) == ["invoices"]
    assert queue.claim_batch(worker_id="w", now=timezone.now()) is None  # its row waits

    response = staff.post(reverse("dashboard:entity-resume", args=["invoices"]), follow=True)

    assert "Resumed invoices" in response.content.decode()
    assert config.get(PAUSED_ENTITIES) == []
    assert queue.claim_batch(worker_id="w", now=timezone.now()).entity == "invoices"


def test_pausing_an_unknown_entity_is_404_and_pauses_nothing(staff):
    assert staff.post(reverse("dashboard:entity-pause", args=["widgets"])).status_code == 404
    assert config.get(PAUSED_ENTITIES) == []


def test_a_viewer_sees_the_pause_but_no_control(client, viewer):
    queue.pause(["stock"], actor=factories.actor())
    client.force_login(viewer)

    entities = section(page(client), "entities")

    assert "stock paused" in entities
    assert "/pause" not in entities and "/resume" not in entities and START not in entities
    assert client.post(reverse("dashboard:entity-resume", args=["stock"])).status_code == 403
    assert config.get(PAUSED_ENTITIES) == ["stock"]


def test_the_admin_pauses_an_entity_without_a_queue_row_to_select(client, staff_user, viewer):
    client.force_login(staff_user)
    url = reverse("admin:sync_queueitem_entities")
    assert QueueItem.objects.count() == 0

    response = client.post(url, {"entity": "payments", "action": "pause"}, follow=True)

    assert "Paused payments" in response.content.decode()
    assert config.get(PAUSED_ENTITIES) == ["payments"]
    assert "Paused: payments (0 rows held)" in client.get(reverse("admin:sync_queueitem_changelist")).content.decode()
    client.post(url, {"entity": "payments", "action": "resume"})
    assert config.get(PAUSED_ENTITIES) == []
    # A viewer reads the page and gets no button.
    viewing = Client()
    viewing.force_login(viewer)
    assert 'value="pause"' not in viewing.get(url).content.decode()
    assert 'value="pause"' in client.get(url).content.decode()


# --- Starting runs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "run_type", "words"),
    [("full", "full", "full pull"), ("reconciliation", "reconciliation", "reconciliation")],
)
def test_the_button_starts_a_run_in_the_cluster(staff, mode, run_type, words, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(START, {"entity": "products", "mode": mode}, follow=True)

    run = SyncRun.objects.get()
    assert (run.entity, run.run_type, run.status, run.trigger) == ("products", run_type, "pending", "dashboard")
    assert f"Started {words} of products: run #{run.pk}" in response.content.decode()
    assert OrmQ.objects.count() == 1  # the cluster executes it


def test_every_entity_at_once(staff):
    staff.post(START, {"entity": "all", "mode": "full"})

    assert sorted(SyncRun.objects.values_list("entity", flat=True)) == sorted(pull.slugs_for("all", "full"))


def test_a_run_that_would_overlap_is_refused_in_words(staff):
    running = pull.start_run("products", "full", now=timezone.now(), trigger="schedule")

    response = staff.post(START, {"entity": "products", "mode": "reconciliation"}, follow=True)

    html = response.content.decode()
    assert f"Reconciliation of products not started: overlap: full run #{running.pk} of products is pending" in html
    assert SyncRun.objects.count() == 1


def test_a_run_over_the_daily_budget_is_refused_in_words(staff, settings, django_capture_on_commit_callbacks):
    settings.ZOHO_PLAN = "free"
    LimiterState.objects.create(
        organization_id=settings.ZOHO_ORGANIZATION_ID,
        calls_today=1000,
        day_resets_at=timezone.now() + timedelta(hours=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(START, {"entity": "products", "mode": "full"}, follow=True)

    html = response.content.decode()
    assert "Full pull of products not started: deferred" in html
    assert "daily budget: needs about" in html and "left today above the reserve" in html
    assert not SyncRun.objects.filter(status=SyncRun.Status.PENDING).exists()
    assert OrmQ.objects.count() == 0


def test_a_run_beyond_a_whole_days_allowance_is_refused_in_words(staff, settings):
    settings.ZOHO_PLAN = "free"
    # The last full scan saw ten million records: more list pages than a whole day of the free plan.
    SyncCursor.objects.create(entity="products", run_type="full", checkpoint={"records": 10_000_000})

    response = staff.post(START, {"entity": "products", "mode": "full"}, follow=True)

    assert "Full pull of products not started: budget: needs about" in response.content.decode()
    assert "more than a whole day" in response.content.decode()
    assert SyncRun.objects.count() == 0


def test_an_unknown_mode_starts_nothing(staff):
    response = staff.post(START, {"entity": "products", "mode": "everything"}, follow=True)

    assert "Nothing started" in response.content.decode()
    assert SyncRun.objects.count() == 0
