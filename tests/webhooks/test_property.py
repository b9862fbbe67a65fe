"""A property of the front door: whatever arrives, never a 500; an authenticated
request to a known entity with an accepted content type is stored (2xx, or 400 kept as
`rejected`); anything else is a 4xx docs/REFERENCE.md lists. After a drain no row is left `pending` or
`processing`, and a well-formed change of another entity sent after them all is applied."""

from __future__ import annotations

import json
import math

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from erp.models import Customer
from sync.models import InboxEvent, QueueItem
from tests.webhooks.conftest import deliver

pytestmark = pytest.mark.django_db

ACCEPTED_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", None]
ENTITIES = ["products", "invoices", "stock", "payments", "prices"]
ID_FIELDS = ["item_id", "invoice_id", "inventory_adjustment_id", "payment_id", "pricebook_id"]
# Numbers as JSON text, including what Python's json.dumps would never write.
HOSTILE_NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "9" * 5000, "1" + "0" * 309, "-0", "1e-400"]
SPECIAL_TEXT = ["\ud800", "\udfff", "\x00", "\\u0000", "a\x00b", "\u2028", "\ufeff", "9999-12-31T23:59:59-14:00"]


class Raw(str):
    """JSON text written as it is."""


def strings() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=12), st.sampled_from(SPECIAL_TEXT))


def numbers() -> st.SearchStrategy:
    return st.one_of(
        st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(HOSTILE_NUMBERS).map(Raw)
    )


def values() -> st.SearchStrategy:
    leaves = st.one_of(st.none(), st.booleans(), numbers(), strings())
    return st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(strings(), inner, max_size=4)),
        max_leaves=12,
    )


def encode(value) -> str:
    """JSON text; ensure_ascii writes lone surrogates and NUL as escapes, as a sender would."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)  # NaN, Infinity: not JSON, but what senders send
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


@st.composite
def objects(draw) -> bytes:
    fields = draw(st.dictionaries(strings(), values(), max_size=6))
    id_field = draw(st.sampled_from(ID_FIELDS))
    if draw(st.booleans()):
        fields[id_field] = draw(st.one_of(strings(), st.integers(), st.sampled_from(["7" * 101, "42"]), numbers()))
    if draw(st.booleans()):
        fields["last_modified_time"] = draw(st.one_of(strings(), st.sampled_from(["2026-06-09T09:45:41-0400"])))
    text = encode(fields)
    depth = draw(st.sampled_from([0, 0, 0, 255, 257, 3000]))
    if depth:
        text = '{"nested":' * depth + text + "}" * depth
    return text.encode("utf-8", "surrogatepass")


bodies = st.one_of(objects(), st.binary(max_size=64))

requests = st.fixed_dictionaries(
    {
        "body": bodies,
        "entity": st.one_of(st.sampled_from(ENTITIES), st.just("no-such-entity")),
        "content_type": st.one_of(st.sampled_from(ACCEPTED_TYPES), st.just("application/xml")),
        "method": st.sampled_from(["POST", "PUT", "DELETE"]),
        "auth": st.booleans().map(lambda ok: ok or None),  # mostly authenticated
    }
)


def check(client, request: dict) -> None:
    auth = request["auth"] is not None or request["entity"] == "no-such-entity"
    response = deliver(
        client,
        request["entity"],
        request["body"],
        method=request["method"],
        content_type=request["content_type"],
        auth=auth,
    )
    status = response.status_code
    assert status < 500, response.content
    if not auth:
        assert status in (401, 429)
    elif request["entity"] == "no-such-entity":
        assert status == 404
    elif request["content_type"] == "application/xml" and request["body"]:
        # (Django's test client sends no content type with an empty body.)
        assert status == 415, response.content
    else:
        assert status in (200, 202, 400), response.content
        event = InboxEvent.objects.get(pk=response.json()["event_id"])
        if status != 200:  # a duplicate names the first row of the same content, sent otherwise
            assert bytes(event.raw_body) == request["body"]
        if status == 400:
            assert event.status == InboxEvent.Status.REJECTED


def test_no_input_is_a_500_or_lost_and_a_drain_leaves_nothing_waiting(client):
    # Every example's rows stay (one test transaction), so the one drain at the end meets them all.
    @settings(max_examples=150, deadline=None)
    @given(request=requests)
    def send(request):
        check(client, request)

    send()
    good = {"contact_id": "900", "contact_name": "Sent after the fuzz", "contact_type": "customer"}
    assert deliver(client, "customers", good).status_code == 202
    call_command("process_queue", "--once")
    assert not QueueItem.objects.filter(status__in=[QueueItem.Status.PENDING, QueueItem.Status.PROCESSING]).exists()
    assert Customer.objects.get(zoho_id="900").contact_name == "Sent after the fuzz"
