"""The webhook answers (docs/REFERENCE.md, "Webhooks") and the order they are checked in."""

from __future__ import annotations

import io
import json

import pytest

from sync.models import DeadLetter, InboxEvent, QueueItem
from tests.webhooks.conftest import deliver

pytestmark = pytest.mark.django_db

ITEM = {"item_id": "42", "name": "Widget", "last_modified_time": "2026-06-09T09:45:41-0400"}


def error_code(response) -> str:
    body = response.json()
    assert body["status"] == "error" and body["detail"]
    return body["error"]


@pytest.mark.parametrize("method", ["GET", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_are_405_before_anything_else(client, method):
    # Unauthenticated, unknown entity: the method is still judged first.
    response = deliver(client, "no-such-entity", b"", method=method, auth=False)
    assert response.status_code == 405
    assert response["Allow"] == "POST, PUT, DELETE"
    if method != "HEAD":
        assert error_code(response) == "method_not_allowed"


def test_oversized_body_is_413_before_authentication(client, settings):
    settings.TDS_WEBHOOK_MAX_BYTES = 100
    response = deliver(client, "products", b"x" * 101, auth=False)
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


def test_body_at_the_limit_is_accepted(client, settings):
    body = json.dumps(ITEM).encode()
    settings.TDS_WEBHOOK_MAX_BYTES = len(body)
    assert deliver(client, "products", body).status_code == 202


class CountingStream(io.BytesIO):
    """A server's de-chunked input: how many bytes did the view ask for?"""

    bytes_read = 0

    def read(self, size=-1):
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_chunked_body_over_the_limit_is_413_without_reading_it_whole(client, settings):
    settings.TDS_WEBHOOK_MAX_BYTES = 1000
    stream = CountingStream(b"x" * 50_000)
    # No Content-Length: the server (gunicorn) de-chunks and says the input ends by itself.
    response = client.post(
        "/webhooks/products",
        content_type="application/json",
        **{"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 413
    assert stream.bytes_read == 1001


def test_chunked_body_under_the_limit_is_accepted(client):
    stream = CountingStream(json.dumps(ITEM).encode())
    response = client.post(
        "/webhooks/products",
        content_type="application/json",
        headers={"X-TDS-Token": "token-new-2"},
        **{"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 202
    assert bytes(InboxEvent.objects.get().raw_body) == json.dumps(ITEM).encode()


def test_unknown_entity_unauthenticated_is_401_not_404(client):
    assert deliver(client, "no-such-entity", ITEM, auth=False).status_code == 401


def test_unknown_entity_is_404(client):
    response = deliver(client, "no-such-entity", ITEM)
    assert response.status_code == 404
    assert error_code(response) == "unknown_entity"
    assert not InboxEvent.objects.exists()


@pytest.mark.parametrize("content_type", ["application/xml", "multipart/form-data; boundary=x", "image/png"])
def test_other_content_types_are_415(client, content_type):
    response = deliver(client, "products", ITEM, content_type=content_type)
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert not InboxEvent.objects.exists()


def test_unknown_entity_with_a_bad_content_type_is_404_first(client):
    assert deliver(client, "no-such-entity", ITEM, content_type="application/xml").status_code == 404


def test_vendor_json_content_type_is_json(client):
    assert deliver(client, "products", ITEM, content_type="application/vnd.zoho+json").status_code == 202


class BrokenStream(io.BytesIO):
    def read(self, size=-1):
        raise OSError("connection reset by peer")


def test_sender_hanging_up_mid_body_is_400_not_500(client):
    response = client.post(
        "/webhooks/products",
        content_type="application/json",
        **{"wsgi.input": BrokenStream(), "CONTENT_LENGTH": "100"},
    )
    assert response.status_code == 400
    assert not InboxEvent.objects.exists()


def test_missing_content_type_is_tried_as_json(client):
    response = deliver(client, "products", ITEM, content_type=None)
    assert response.status_code == 202
    assert InboxEvent.objects.get().content_type == ""


def test_unparseable_body_is_400_and_kept_as_rejected(client):
    response = deliver(client, "products", b"{not json")
    assert response.status_code == 400
    assert error_code(response) == "invalid_payload"
    event = InboxEvent.objects.get()
    assert event.status == InboxEvent.Status.REJECTED
    assert event.idempotency_key.startswith("raw:") and len(event.idempotency_key) == 4 + 64
    assert bytes(event.raw_body) == b"{not json"
    assert response.json()["event_id"] == event.pk
    assert not QueueItem.objects.exists()


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_400(client, body):
    assert deliver(client, "products", body).status_code == 400
    assert InboxEvent.objects.get().status == InboxEvent.Status.REJECTED


def test_unparseable_repeat_is_counted_on_the_first_row(client):
    deliver(client, "products", b"{not json")
    deliver(client, "products", b"{not json")
    assert InboxEvent.objects.get().duplicate_count == 1


def test_accepted_answer_names_the_inbox_row(client):
    response = deliver(client, "products", ITEM)
    assert response.status_code == 202
    event = InboxEvent.objects.get()
    assert response.json() == {"status": "accepted", "event_id": event.pk, "duplicate": False}


@pytest.mark.parametrize("path", ["/webhooks/products", "/webhooks/products/"])
def test_trailing_slash_is_optional(client, path):
    response = client.post(path, ITEM, content_type="application/json", headers={"X-TDS-Token": "token-new-2"})
    assert response.status_code == 202


def test_csrf_is_not_required(settings):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    assert deliver(csrf_client, "products", ITEM).status_code == 202


@pytest.mark.parametrize(("method", "operation"), [("POST", "upsert"), ("PUT", "upsert"), ("DELETE", "delete")])
def test_method_sets_the_operation(client, method, operation):
    assert deliver(client, "products", ITEM, method=method).status_code == 202
    assert QueueItem.objects.get().operation == operation


def test_object_without_its_id_is_accepted_and_dead_lettered(client):
    response = deliver(client, "invoices", {"invoice": {"invoice_number": "INV-1"}})
    assert response.status_code == 202
    event = InboxEvent.objects.get()
    assert event.status == InboxEvent.Status.REJECTED
    dead = DeadLetter.objects.get()
    assert (dead.reason, dead.entity, dead.inbox_event_id, dead.queue_item_id) == (
        "validation",
        "invoices",
        event.pk,
        None,
    )
    assert "invoice_id" in dead.error
    assert not QueueItem.objects.exists()


def test_inbox_keeps_request_facts_but_never_credentials(client):
    deliver(
        client,
        "products",
        ITEM,
        query="?token=token-new-2",
        **{"User-Agent": "Zoho", "X-Zoho-Org-Id": "600", "X-TDS-Signature": "sha256=00", "Cookie": "a=b"},
    )
    event = InboxEvent.objects.get()
    assert event.method == "POST"
    assert event.remote_addr == "127.0.0.1"
    assert event.content_type == "application/json"
    assert event.headers == {"content-type": "application/json", "user-agent": "Zoho", "x-zoho-org-id": "600"}
    assert "token-new-2" not in json.dumps(event.headers)


def test_deeply_nested_json_is_400_not_500(client):
    assert deliver(client, "products", b"[" * 100_000).status_code == 400


@pytest.mark.postgres
def test_content_jsonb_cannot_hold_is_accepted_and_dead_lettered_inside_a_transaction(client):
    # jsonb cannot hold \u0000: it is judged before any statement, so here inside the caller's
    # transaction (this module's tests, ATOMIC_REQUESTS) nothing is poisoned either.
    # test_one_statement.py has the same delivery in autocommit, the production path.
    response = deliver(client, "products", b'{"item_id": "42", "name": "nul \\u0000 here"}')
    assert response.status_code == 202
    assert InboxEvent.objects.get().status == InboxEvent.Status.REJECTED
    assert DeadLetter.objects.get().reason == "validation"
    assert not QueueItem.objects.exists()
    assert deliver(client, "products", ITEM).status_code == 202


def test_delete_without_a_body_takes_the_id_from_the_query(client):
    response = deliver(client, "products", b"", method="DELETE", query="?item_id=42&token=token-new-2", auth=False)
    assert response.status_code == 202
    row = QueueItem.objects.get()
    assert (row.operation, row.object_id, row.payload) == ("delete", "42", {"item_id": "42"})


def test_delete_without_a_body_or_an_id_is_kept_and_dead_lettered(client):
    assert deliver(client, "products", b"", method="DELETE").status_code == 202
    assert DeadLetter.objects.get().reason == "validation"


def test_post_without_a_body_is_400(client):
    assert deliver(client, "products", b"", query="?item_id=42").status_code == 400


@pytest.mark.parametrize(("query", "operation"), [("?operation=delete", "delete"), ("?operation=upsert", "upsert")])
def test_operation_parameter_overrides_the_method(client, query, operation):
    method = "DELETE" if operation == "upsert" else "POST"
    assert deliver(client, "products", ITEM, method=method, query=query).status_code == 202
    assert QueueItem.objects.get().operation == operation


def test_a_bodiless_delete_does_not_take_the_operation_parameter_for_its_object(client):
    deliver(client, "products", b"", method="POST", query="?operation=delete&item_id=42")
    assert QueueItem.objects.get().payload == {"item_id": "42"}
