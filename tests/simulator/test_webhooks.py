"""Webhooks pushed by the simulator reach a loopback HTTP server, authenticated as configured."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs

import pytest

from zohosim import ZohoSimulator
from zohosim.webhooks import standard_signature, zoho_signature

from .conftest import SAMPLES, target


def test_push_reaches_tds_core_with_the_token(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_token="tok-1")
    invoice = sim.seed("invoices", 1)[0]
    assert sim.push_webhook("invoices", invoice, body_format="json").status_code == 202
    method, path, headers, body = receiver.seen[0]
    assert (method, path, headers["X-TDS-Token"]) == ("POST", "/webhooks/invoices", "tok-1")
    assert json.loads(body) == {"invoice": invoice}


def test_push_signs_the_body_with_the_secret(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_secret="s3cret")
    item = sim.seed("products", 1)[0]
    sim.push_webhook("products", item, method="PUT")
    method, _, headers, body = receiver.seen[0]
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert method == "PUT" and headers["X-TDS-Signature"] == f"sha256={expected}"
    assert "X-TDS-Token" not in headers


def test_a_delete_goes_as_delete_or_as_post_with_operation_delete_signed_zoho_style(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), zoho_webhook_secret="TdsZohoSecret2026")
    contact = sim.seed("vendors", 1)[0]
    sim.push_webhook("vendors", contact, method="DELETE", delete_via="DELETE", body_format="json")
    sim.push_webhook("vendors", contact, method="DELETE", delete_via="POST", body_format="json")
    (m1, p1, h1, b1), (m2, p2, h2, b2) = receiver.seen
    assert (m1, p1) == ("DELETE", "/webhooks/vendors")  # no `org` or `event`: Zoho sends neither
    assert (m2, p2) == ("POST", "/webhooks/vendors?operation=delete")
    assert h1["X-Zoho-Webhook-Signature"] == zoho_signature("TdsZohoSecret2026", {}, b1)
    assert h2["X-Zoho-Webhook-Signature"] == zoho_signature("TdsZohoSecret2026", {"operation": "delete"}, b2)


def test_some_deliveries_come_as_zohos_default_form_payload_and_none_carry_query_parameters(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_token="t")
    item = sim.seed("products", 1)[0]
    for _ in range(40):
        sim.push_webhook("products", item)
    types = [headers["Content-Type"] for _, _, headers, _ in receiver.seen]
    assert 0 < types.count("application/x-www-form-urlencoded") < 40
    forms = [body for _, _, headers, body in receiver.seen if headers["Content-Type"].endswith("urlencoded")]
    assert all(json.loads(parse_qs(body.decode())["JSONString"][0]) == {"item": item} for body in forms)
    assert {path for _, path, _, _ in receiver.seen} == {"/webhooks/products"}


def test_zoho_signature_matches_the_readme_test_vector():
    body = b'{"item":{"item_id":"4815000000044208","name":"Widget","last_modified_time":"2026-06-09T09:45:41-0400"}}'
    signature = zoho_signature("TdsZohoSecret2026", {"org": "60012345", "event": "item.updated"}, body)
    assert signature == "ed248d3f2532da49bbd88c924883c5ecd30c0fad909d8585e3ce8731066d2cf5"


def test_stock_snapshot_goes_under_item(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_token="t")
    item = sim.seed("products", 1)[0]
    sim.push_webhook("stock", item, body_format="json")
    assert json.loads(receiver.seen[0][3]).keys() == {"item"}


def test_zoho_signature_over_form_fields_matches_the_readme_vector_in_both_orderings():
    query = {"org": "60012345", "event": "item.updated"}
    form = {"item_id": "4815000000044208", "name": "Widget"}
    first = zoho_signature("TdsZohoSecret2026", query, b"ignored for a form", form, merged=False)
    assert first == "bcd473b82aaaef042fd3cd2ed54a85404e09b167a986a30ef16bc1d8ca5630c7"
    # Merged: eventitem.updated item_id… name… org… sorted together.
    merged = hmac.new(
        b"TdsZohoSecret2026", b"eventitem.updateditem_id4815000000044208nameWidgetorg60012345", hashlib.sha256
    ).hexdigest()
    assert zoho_signature("TdsZohoSecret2026", query, b"", form) == merged


def test_standard_signature_matches_the_reference_vector():
    vector = json.loads((SAMPLES / "standard-webhooks-test-vector.json").read_text())
    signed = standard_signature(vector["secret"], vector["msg_id"], vector["timestamp"], vector["payload"].encode())
    assert signed == vector["expected_signature"]


@pytest.mark.parametrize(
    ("body_format", "content_type"),
    [("json-as-form", "application/x-www-form-urlencoded"), ("form-json", "application/x-www-form-urlencoded")],
)
def test_json_travels_in_the_shapes_zoho_labels_as_forms(receiver, body_format, content_type):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_token="t")
    bill = sim.seed("bills", 1)[0]
    sim.push_webhook("bills", bill, body_format=body_format)
    _, _, headers, body = receiver.seen[0]
    assert headers["Content-Type"] == content_type
    text = parse_qs(body.decode())["JSONString"][0] if body_format == "form-json" else body.decode()
    assert json.loads(text) == {"bill": bill}


def test_flat_form_carries_the_scalar_fields(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), zoho_webhook_secret="k3y")
    user = sim.seed("users", 1)[0]
    sim.push_webhook("users", user, body_format="form")
    _, path, headers, body = receiver.seen[0]
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    assert form["user_id"] == user["user_id"] and form["is_current_user"] == "false"
    assert path == "/webhooks/users"
    assert headers["X-Zoho-Webhook-Signature"] == zoho_signature("k3y", {}, body, form)


def test_standard_webhooks_headers_when_a_relay_secret_is_set(receiver):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sim = ZohoSimulator(webhook_target=target(receiver), standard_webhook_secret=secret)
    sim.push_webhook("prices", sim.seed("prices", 1)[0], body_format="json")
    _, _, headers, body = receiver.seen[0]
    assert abs(int(headers["webhook-timestamp"]) - sim.now().timestamp()) < 5
    assert headers["webhook-signature"] == standard_signature(
        secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body
    )
