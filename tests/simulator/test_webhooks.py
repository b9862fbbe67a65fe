"""Webhooks pushed by the simulator reach a loopback HTTP server, authenticated as configured."""

from __future__ import annotations

import hashlib
import hmac
import json

from sync.zoho.simulator import ZohoSimulator
from sync.zoho.simulator.webhooks import zoho_signature

from .conftest import target


def test_push_reaches_tds_core_with_the_token(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_token="tok-1")
    invoice = sim.seed("invoices", 1)[0]
    assert sim.push_webhook("invoices", invoice).status_code == 202
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


def test_push_signs_zoho_style_with_query_parameters(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), zoho_webhook_secret="TdsZohoSecret2026")
    contact = sim.seed("vendors", 1)[0]
    sim.push_webhook("vendors", contact, method="DELETE")
    method, path, headers, body = receiver.seen[0]
    assert method == "DELETE" and path == "/webhooks/vendors?org=60012345&event=contact.deleted"
    query = {"org": "60012345", "event": "contact.deleted"}
    assert headers["X-Zoho-Webhook-Signature"] == zoho_signature("TdsZohoSecret2026", query, body)


def test_zoho_signature_matches_the_readme_test_vector():
    body = b'{"item":{"item_id":"4815000000044208","name":"Widget","last_modified_time":"2026-06-09T09:45:41-0400"}}'
    signature = zoho_signature("TdsZohoSecret2026", {"org": "60012345", "event": "item.updated"}, body)
    assert signature == "ed248d3f2532da49bbd88c924883c5ecd30c0fad909d8585e3ce8731066d2cf5"


def test_stock_snapshot_goes_under_item(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_token="t")
    item = sim.seed("products", 1)[0]
    sim.push_webhook("stock", item)
    assert json.loads(receiver.seen[0][3]).keys() == {"item"}
