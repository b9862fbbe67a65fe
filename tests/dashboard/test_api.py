"""The dashboard API: who may call it, what each endpoint answers, and how it filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from sync.config_keys import BATCH_SIZE
from sync.models import QueueItem
from tdscore.models import Configuration
from tests import factories

from .conftest import dead_lettered, finished_row

pytestmark = pytest.mark.django_db

READS = [
    "/api/dashboard/metrics",
    "/api/dashboard/queue-stats",
    "/api/dashboard/recent-events",
    "/api/dashboard/dead-letter",
    "/api/dashboard/dead-letter?group=1",
    "/api/dashboard/config",
    "/api/schema/",
]
WRITES = [
    "/api/dashboard/dead-letter/1/retry",
    "/api/dashboard/dead-letter/1/discard",
    "/api/dashboard/dead-letter/retry",
]


@pytest.fixture
def member(django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("clerk", password="pw"))
    return client


@pytest.mark.parametrize("path", READS + WRITES)
def test_anonymous_is_401(path):
    client = APIClient()
    answer = client.post(path) if path in WRITES else client.get(path)

    assert answer.status_code == 401


@pytest.mark.parametrize("path", READS + WRITES)
def test_non_staff_is_403(member, path):
    answer = member.post(path) if path in WRITES else member.get(path)

    assert answer.status_code == 403


@pytest.mark.parametrize("path", READS)
def test_staff_reads_every_endpoint(api_client, path):
    assert api_client.get(path).status_code == 200


def test_a_staff_token_is_accepted(staff_user):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")

    assert client.get("/api/dashboard/metrics").status_code == 200


def test_a_staff_session_is_accepted(client, staff_user):
    client.force_login(staff_user)

    assert client.get("/api/dashboard/queue-stats").status_code == 200


def test_an_operator_over_the_rate_is_answered_429(api_client, settings):
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "2/minute"}}

    answers = [api_client.get("/api/dashboard/queue-stats").status_code for _ in range(3)]
    cache.clear()

    assert answers == [200, 200, 429]


# --- metrics, queue-stats --------------------------------------------------------------------


def test_metrics_has_the_windows_queue_dlq_alerts_zoho_and_throughput(api_client, now):
    finished_row(received=now - timedelta(minutes=3), finished=now - timedelta(minutes=3) + timedelta(seconds=2))
    dead_lettered(object_id="2", at=now - timedelta(minutes=2))
    factories.queue_item(object_id="3", now=now - timedelta(minutes=1))
    factories.alert()

    body = api_client.get("/api/dashboard/metrics").json()

    assert body["last_hour"]["applied"] == 1
    assert body["last_hour"]["failed"] == 1
    assert body["last_hour"]["success_rate"] == 0.5
    assert 1 <= body["last_hour"]["latency_p50_seconds"] <= 2
    assert body["last_day"]["received"] == 2  # webhooks only: the third row has no inbox row
    assert body["queue_depth"] == 1
    assert body["oldest_pending_age_seconds"] == pytest.approx(60)
    assert body["dlq_size"] == 1
    assert body["open_alerts"] == 1
    assert body["zoho"]["daily_cap"] == 1000
    assert body["throughput"]["step_seconds"] == 3600
    assert len(body["throughput"]["applied"]) == 25  # 24 hours, both ends


def test_queue_stats_counts_by_status_and_entity(api_client, now):
    factories.queue_item("products", "1")
    finished_row("invoices", "2", received=now - timedelta(hours=2), finished=now - timedelta(hours=2))
    finished_row("invoices", "3", received=now - timedelta(days=2), finished=now - timedelta(days=2))

    body = api_client.get("/api/dashboard/queue-stats").json()

    assert body["by_status"]["pending"] == 1
    assert body["by_status"]["completed"] == 1
    assert body["by_entity"] == {"invoices": {"completed": 1}, "products": {"pending": 1}}  # finished: last 24 h
    assert body["depth"] == 1


# --- recent-events ---------------------------------------------------------------------------


def ids(answer) -> list[int]:
    assert answer.status_code == 200, answer.content
    return [row["id"] for row in answer.json()["results"]]


def test_recent_events_are_newest_first_with_their_inbox_rows(api_client, now):
    older = finished_row("products", "1", received=now, finished=now)
    newer = factories.queue_item("products", "2", source=QueueItem.Source.PULL)

    body = api_client.get("/api/dashboard/recent-events").json()

    assert [row["id"] for row in body["results"]] == [newer.pk, older.pk]
    assert body["results"][1]["inbox_event"]["id"] == older.inbox_event_id
    assert body["results"][1]["inbox_event"]["received_at"]
    assert body["results"][0]["inbox_event"] is None


def test_recent_events_filter_by_entity_status_source_and_object_id(api_client, now):
    product = factories.queue_item("products", "1")
    invoice = finished_row("invoices", "2", received=now, finished=now)
    pulled = factories.queue_item("customers", "3", source=QueueItem.Source.PULL)

    assert ids(api_client.get("/api/dashboard/recent-events?entity=invoices")) == [invoice.pk]
    assert ids(api_client.get("/api/dashboard/recent-events?status=pending")) == [pulled.pk, product.pk]
    assert ids(api_client.get("/api/dashboard/recent-events?source=pull")) == [pulled.pk]
    assert ids(api_client.get("/api/dashboard/recent-events?object_id=1")) == [product.pk]


def test_recent_events_filter_by_created_after_and_before(api_client, now):
    old = factories.queue_item("products", "1", now=now - timedelta(days=2))
    new = factories.queue_item("products", "2", now=now)
    cut = (now - timedelta(days=1)).isoformat()

    assert ids(api_client.get("/api/dashboard/recent-events", {"created_after": cut})) == [new.pk]
    assert ids(api_client.get("/api/dashboard/recent-events", {"created_before": cut})) == [old.pk]


def test_an_unknown_status_is_400(api_client):
    assert api_client.get("/api/dashboard/recent-events?status=lost").status_code == 400


def test_recent_events_are_paginated(api_client):
    rows = [factories.queue_item("products", str(i)) for i in range(3)]

    first = api_client.get("/api/dashboard/recent-events?page_size=2").json()
    second = api_client.get(first["next"]).json()

    assert first["count"] == 3
    assert first["previous"] is None
    assert [r["id"] for r in first["results"]] == [rows[2].pk, rows[1].pk]
    assert [r["id"] for r in second["results"]] == [rows[0].pk]
    assert second["next"] is None


# --- dead-letter -----------------------------------------------------------------------------


def test_dead_letters_filter_by_entity_reason_and_resolved(api_client, now):
    product = dead_lettered("products", "1", reason="validation")
    invoice = dead_lettered("invoices", "2", reason="retries_exhausted")
    gone = dead_lettered("products", "3", reason="validation", resolved_at=now, resolution="discarded")

    assert set(ids(api_client.get("/api/dashboard/dead-letter?entity=products"))) == {product.pk, gone.pk}
    assert set(ids(api_client.get("/api/dashboard/dead-letter?reason=validation"))) == {product.pk, gone.pk}
    assert ids(api_client.get("/api/dashboard/dead-letter?reason=retries_exhausted")) == [invoice.pk]
    assert ids(api_client.get("/api/dashboard/dead-letter?resolved=true")) == [gone.pk]
    assert set(ids(api_client.get("/api/dashboard/dead-letter?resolved=false"))) == {product.pk, invoice.pk}


def test_dead_letters_group_by_entity_reason_and_error_class(api_client, now):
    first = dead_lettered("products", "1", error="ZohoError: 500", error_class="ZohoError", at=now - timedelta(hours=2))
    last = dead_lettered("products", "2", error="ZohoError: 502", error_class="ZohoError", at=now - timedelta(hours=1))
    dead_lettered("products", "3", error="KeyError: 'x'", error_class="KeyError", at=now - timedelta(hours=3))

    body = api_client.get("/api/dashboard/dead-letter?group=1").json()

    assert body["count"] == 2
    zoho, key = body["results"]  # the most recent failure first
    assert (zoho["entity"], zoho["reason"], zoho["error_class"], zoho["count"]) == (
        "products",
        "retries_exhausted",
        "ZohoError",
        2,
    )
    assert zoho["first_seen"].startswith(first.first_failed_at.isoformat()[:19])
    assert zoho["last_seen"].startswith(last.last_failed_at.isoformat()[:19])
    assert zoho["sample"] == {
        "id": last.pk,
        "object_id": "2",
        "error": "ZohoError: 502",
        "last_failed_at": zoho["last_seen"],
    }
    assert key["count"] == 1


def test_groups_take_the_same_filters(api_client):
    dead_lettered("products", "1")
    dead_lettered("invoices", "2")

    body = api_client.get("/api/dashboard/dead-letter?group=1&entity=invoices").json()

    assert [g["entity"] for g in body["results"]] == ["invoices"]


def test_retry_sends_the_queue_row_back_to_pending_as_the_cli_does(api_client, staff_user):
    dead_letter = dead_lettered()

    answer = api_client.post(f"/api/dashboard/dead-letter/{dead_letter.pk}/retry")

    assert answer.status_code == 202
    dead_letter.refresh_from_db()
    item = QueueItem.objects.get(pk=dead_letter.queue_item_id)
    assert (item.status, item.attempts, item.finished_at) == (QueueItem.Status.PENDING, 0, None)
    assert (dead_letter.resolution, dead_letter.resolved_by) == ("replayed", staff_user.username)
    assert answer.json()["queue_item"] == item.pk
    assert answer.json()["status"] == "pending"


def test_retry_of_a_resolved_dead_letter_is_409_with_the_reason(api_client):
    dead_letter = dead_lettered()
    api_client.post(f"/api/dashboard/dead-letter/{dead_letter.pk}/discard")

    answer = api_client.post(f"/api/dashboard/dead-letter/{dead_letter.pk}/retry")

    assert answer.status_code == 409
    assert answer.json()["error"] == "already_resolved"
    assert "already discarded" in answer.json()["detail"]


def test_retry_of_an_ingest_failure_is_409_it_has_no_queue_row(api_client):
    from sync import queue

    event = factories.inbox_event()
    dead_letter = queue.dead_letter_at_ingest(
        inbox_event=event, entity="products", payload={}, error="no item_id", now=event.received_at
    )

    answer = api_client.post(f"/api/dashboard/dead-letter/{dead_letter.pk}/retry")

    assert answer.status_code == 409
    assert answer.json()["error"] == "not_replayable"
    dead_letter.refresh_from_db()
    assert dead_letter.resolved_at is None


def test_discard_resolves_without_applying(api_client, staff_user):
    dead_letter = dead_lettered()

    answer = api_client.post(f"/api/dashboard/dead-letter/{dead_letter.pk}/discard")

    assert answer.status_code == 200
    assert answer.json()["resolution"] == "discarded"
    dead_letter.refresh_from_db()
    assert (dead_letter.resolution, dead_letter.resolved_by) == ("discarded", staff_user.username)
    assert QueueItem.objects.get(pk=dead_letter.queue_item_id).status == QueueItem.Status.DEAD_LETTER


def test_discard_twice_is_409(api_client):
    dead_letter = dead_lettered()
    api_client.post(f"/api/dashboard/dead-letter/{dead_letter.pk}/discard")

    assert api_client.post(f"/api/dashboard/dead-letter/{dead_letter.pk}/discard").status_code == 409


def test_an_unknown_dead_letter_is_404(api_client):
    assert api_client.post("/api/dashboard/dead-letter/999999/retry").status_code == 404


def test_bulk_retry_replays_what_the_filter_matches(api_client):
    products = [dead_lettered("products", str(i)) for i in range(2)]
    invoice = dead_lettered("invoices", "9")

    answer = api_client.post("/api/dashboard/dead-letter/retry", {"entity": "products"}, format="json")

    assert answer.status_code == 202
    assert answer.json() == {"count": 2, "not_replayed": 0}
    assert {QueueItem.objects.get(pk=d.queue_item_id).status for d in products} == {QueueItem.Status.PENDING}
    assert QueueItem.objects.get(pk=invoice.queue_item_id).status == QueueItem.Status.DEAD_LETTER


def test_bulk_retry_takes_the_filters_from_the_query_string_too(api_client):
    dead_lettered("products", "1", reason="validation")
    dead_lettered("products", "2", reason="retries_exhausted")

    answer = api_client.post("/api/dashboard/dead-letter/retry?reason=validation")

    assert answer.json()["count"] == 1


def test_bulk_retry_without_a_filter_needs_all(api_client):
    dead_lettered("products", "1")
    dead_lettered("invoices", "2")

    refused = api_client.post("/api/dashboard/dead-letter/retry", {}, format="json")
    everything = api_client.post("/api/dashboard/dead-letter/retry", {"all": True}, format="json")

    assert refused.status_code == 400
    assert refused.json()["error"] == "filter_required"
    assert everything.status_code == 202
    assert everything.json()["count"] == 2


def test_bulk_retry_counts_the_ones_it_could_not_replay(api_client):
    from sync import queue

    dead_lettered("products", "1")
    event = factories.inbox_event()
    queue.dead_letter_at_ingest(inbox_event=event, entity="products", payload={}, error="bad", now=event.received_at)

    answer = api_client.post("/api/dashboard/dead-letter/retry", {"entity": "products"}, format="json")

    assert answer.json() == {"count": 1, "not_replayed": 1}


# --- config ----------------------------------------------------------------------------------


def test_config_lists_every_key_with_its_range_and_default(api_client):
    rows = {row["key"]: row for row in api_client.get("/api/dashboard/config?page_size=500").json()["results"]}

    assert rows["batch_size"]["value"] == 100
    assert rows["batch_size"]["default"] == 100
    assert (rows["batch_size"]["min"], rows["batch_size"]["max"]) == (1, 5000)
    assert rows["reconciliation_schedule_cron"]["value_type"] == "cron"


def test_config_patch_needs_the_permission_to_change_the_configuration(viewer):
    client = APIClient()
    client.force_authenticate(viewer)

    answer = client.patch("/api/dashboard/config", {"batch_size": 200}, format="json")

    assert answer.status_code == 403
    assert Configuration.objects.get(key="batch_size").value == 100


@pytest.fixture
def root_client(superuser):
    client = APIClient()
    client.force_authenticate(superuser)
    return client


def test_config_patch_changes_several_keys_at_once(root_client, superuser):
    from tdscore import config
    from tdscore.models import Configuration

    answer = root_client.patch(
        "/api/dashboard/config", {"batch_size": 250, "paused_entities": ["invoices"]}, format="json"
    )

    assert answer.status_code == 200
    assert answer.json()["updated"] == {"batch_size": 250, "paused_entities": ["invoices"]}
    assert config.get(BATCH_SIZE) == 250
    assert Configuration.objects.get(key="batch_size").updated_by == superuser


def test_config_patch_with_one_bad_value_changes_nothing_and_names_the_key(root_client):
    from tdscore import config

    answer = root_client.patch("/api/dashboard/config", {"batch_size": 250, "max_retry_attempts": 0}, format="json")

    assert answer.status_code == 400
    assert answer.json()["key"] == "max_retry_attempts"
    assert "below the minimum" in answer.json()["detail"]
    assert config.get(BATCH_SIZE) == 100


def test_config_patch_of_an_unknown_key_is_400(root_client):
    answer = root_client.patch("/api/dashboard/config", {"no_such_key": 1}, format="json")

    assert answer.status_code == 400
    assert answer.json()["key"] == "no_such_key"


# --- schema and docs -------------------------------------------------------------------------


def test_schema_covers_every_dashboard_endpoint(api_client):
    paths = api_client.get("/api/schema/?format=json").json()["paths"]

    for path in [
        "/api/dashboard/metrics",
        "/api/dashboard/queue-stats",
        "/api/dashboard/recent-events",
        "/api/dashboard/dead-letter",
        "/api/dashboard/dead-letter/{id}/retry",
        "/api/dashboard/dead-letter/{id}/discard",
        "/api/dashboard/dead-letter/retry",
        "/api/dashboard/config",
    ]:
        assert path in paths
    assert "patch" in paths["/api/dashboard/config"]


def test_docs_send_an_anonymous_visitor_to_the_login_page(client):
    answer = client.get("/api/docs/")

    assert answer.status_code == 302
    assert answer["Location"].startswith("/admin/login/?next=/api/docs/")


def test_docs_are_served_without_a_cdn(client, staff_user):
    client.force_login(staff_user)

    page = client.get("/api/docs/").content.decode()

    assert "swagger-ui" in page
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page


def test_a_time_with_an_offset_postgresql_refuses_is_read_as_utc(api_client, now):
    row = factories.queue_item("products", "1", now=now)

    found = api_client.get("/api/dashboard/recent-events", {"created_after": "1220-11-28T02:20:32-16:18"})

    assert ids(found) == [row.pk]


def test_a_time_that_cannot_exist_in_utc_is_400(api_client):
    answer = api_client.get("/api/dashboard/recent-events", {"created_before": "0001-01-01T00:00:00+05:00"})

    assert answer.status_code == 400
