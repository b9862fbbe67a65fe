"""Valid JSON objects whose content cannot be stored or applied as typed: accepted (202),
the raw body kept in the inbox, dead-lettered as `validation`, never a queue row, never a 500, and
no detail echoing the payload. Only an unparseable or too deeply nested body is 400 (`rejected`)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from erp.models import Customer
from sync.models import DeadLetter, InboxEvent, QueueItem
from tests.webhooks.conftest import deliver

pytestmark = pytest.mark.django_db

GOOD = {"contact_id": "900", "contact_name": "After the bad ones", "contact_type": "customer"}

HOSTILE = {
    "lone surrogate in a value": b'{"item_id": "42", "name": "\\ud800"}',
    "lone surrogate in a key": b'{"item_id": "42", "\\udfff": "x"}',
    "lone surrogate in the id": b'{"item_id": "4\\ud83d2"}',
    "NUL in a value": b'{"item_id": "42", "name": "a\\u0000b"}',
    "NUL in a key": b'{"item_id": "42", "na\\u0000me": "x"}',
    "NUL in the id": b'{"item_id": "4\\u00002"}',
    "1e400": b'{"item_id": "42", "rate": 1e400}',
    "NaN": b'{"item_id": "42", "rate": NaN}',
    "Infinity": b'{"item_id": "42", "rate": -Infinity}',
    "an integer of 5,000 digits": b'{"item_id": "42", "rate": ' + b"9" * 5000 + b"}",
    "an integer past a double": b'{"item_id": "42", "rate": 1' + b"0" * 309 + b"}",
    "an id of 101 characters": json.dumps({"item_id": "9" * 101}).encode(),
    "an id of 5,000 digits": b'{"item_id": ' + b"7" * 5000 + b"}",
    "last_modified_time past year 9999 in UTC": b'{"item_id": "42", "last_modified_time": "9999-12-31T23:59:59-14:00"}',
    "last_modified_time before year 1 in UTC": b'{"item_id": "42", "last_modified_time": "0001-01-01T00:00:00+05:00"}',
    "updated_time past year 9999 in UTC": b'{"item_id": "42", "updated_time": "9999-12-31T23:00:00-0200"}',
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_content_that_cannot_be_stored_as_typed_is_accepted_kept_and_dead_lettered(client, body):
    response = deliver(client, "products", body)
    assert response.status_code == 202, response.content
    event = InboxEvent.objects.get(pk=response.json()["event_id"])
    assert (bytes(event.raw_body), event.status) == (body, InboxEvent.Status.REJECTED)
    dead = DeadLetter.objects.get()
    assert (dead.reason, dead.inbox_event_id, dead.queue_item_id) == ("validation", event.pk, None)
    assert not QueueItem.objects.exists()


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_dead_lettered_delivery_repeated_is_a_duplicate(client, body):
    first = deliver(client, "products", body).json()["event_id"]
    again = deliver(client, "products", body)
    assert (again.status_code, again.json()["event_id"]) == (200, first)
    assert DeadLetter.objects.count() == 1


def test_a_version_out_of_range_is_never_stored_as_a_version(client):
    deliver(client, "products", {"item_id": "42", "last_modified_time": "9999-12-31T23:59:59-14:00"})
    assert DeadLetter.objects.get().error == "products: last_modified_time is outside the times the database can hold"


def test_a_version_at_the_edge_of_the_range_is_read_and_refused_as_too_far_ahead(client):
    assert (
        deliver(client, "products", {"item_id": "42", "last_modified_time": "9999-12-30T10:00:00+00:00"}).status_code
        == 202
    )
    assert "9999-12-30T10:00:00+00:00 is later than" in DeadLetter.objects.get().error
    assert not QueueItem.objects.exists()


def test_bad_content_never_holds_up_a_good_change_of_another_entity(client):
    for body in HOSTILE.values():
        deliver(client, "products", body)
    assert deliver(client, "customers", GOOD).status_code == 202
    call_command("process_queue", "--once")
    assert Customer.objects.get(zoho_id="900").contact_name == "After the bad ones"
    assert not QueueItem.objects.filter(status__in=["pending", "processing"]).exists()


@pytest.mark.parametrize("depth", [257, 1_000, 100_000])
def test_json_nested_deeper_than_the_limit_is_400_and_kept(client, depth):
    body = b'{"a":' * depth + b"1" + b"}" * depth
    response = deliver(client, "products", body)
    assert response.status_code == 400
    assert response.json()["detail"] == "the JSON is nested deeper than 256 levels"
    assert InboxEvent.objects.get().status == InboxEvent.Status.REJECTED


def test_json_nested_to_the_limit_is_an_object(client):
    body = b'{"item_id": "42", "deep": ' + b"[" * 255 + b"]" * 255 + b"}"
    assert deliver(client, "products", body).status_code == 202
    assert QueueItem.objects.get().object_id == "42"


MARK = "PAYLOAD-MARK-7731"
ECHO_PROBES = {
    "unparseable": f'{{"item_id": "{MARK}"'.encode(),
    "not an object": f'["{MARK}"]'.encode(),
    "not UTF-8": f'{{"item_id": "{MARK}\xff"}}'.encode("latin-1"),
    "unsupported content type": ("application/xml", f"<{MARK}/>".encode()),
}


@pytest.mark.parametrize("probe", ECHO_PROBES.values(), ids=ECHO_PROBES.keys())
def test_no_error_body_echoes_the_payload(client, probe):
    content_type, body = probe if isinstance(probe, tuple) else (f"application/json; x={MARK}", probe)
    response = deliver(
        client, f"products-{MARK}" if content_type == "application/xml" else "products", body, content_type=content_type
    )
    assert response.status_code >= 400
    assert MARK not in response.content.decode()


def test_unknown_entity_answer_does_not_echo_the_path(client):
    response = deliver(client, f"x{MARK}", {"item_id": "1"})
    assert response.status_code == 404
    assert MARK not in response.content.decode()
