"""The simulator's webhooks land in TDS Core's own receiver (a live server), each auth scheme accepted."""

from __future__ import annotations

import pytest

from sync.models import InboxEvent
from sync.zoho.simulator import ZohoSimulator

pytestmark = pytest.mark.django_db(transaction=True)


def test_token_authenticated_push_is_accepted_and_kept(live_server, settings):
    settings.TDS_WEBHOOK_TOKEN = ["tds-token"]
    sim = ZohoSimulator(webhook_target=live_server.url, webhook_token="tds-token")
    invoice = sim.seed("invoices", 1)[0]
    answer = sim.push_webhook("invoices", invoice)
    assert answer.status_code == 202, answer.text
    event = InboxEvent.objects.get(pk=answer.json()["event_id"])
    assert event.entity == "invoices"


@pytest.mark.parametrize("scheme", ["webhook_secret", "zoho_webhook_secret"])
def test_signed_push_is_accepted(live_server, settings, scheme):
    settings.TDS_WEBHOOK_SECRET = ["tds-secret-1"]
    settings.TDS_ZOHO_WEBHOOK_SECRET = ["TdsZohoSecret2026"]
    secret = "tds-secret-1" if scheme == "webhook_secret" else "TdsZohoSecret2026"
    sim = ZohoSimulator(webhook_target=live_server.url, **{scheme: secret})
    vendor = sim.seed("vendors", 1)[0]
    answer = sim.push_webhook("vendors", vendor, method="PUT")
    assert answer.status_code == 202, answer.text


def test_push_with_a_wrong_token_is_refused(live_server, settings):
    settings.TDS_WEBHOOK_TOKEN = ["tds-token"]
    sim = ZohoSimulator(webhook_target=live_server.url, webhook_token="stale")
    assert sim.push_webhook("products", sim.seed("products", 1)[0]).status_code == 401
    assert not InboxEvent.objects.exists()


@pytest.mark.parametrize("body_format", ["json-as-form", "form-json", "form"])
def test_every_body_format_is_accepted(live_server, settings, body_format):
    settings.TDS_ZOHO_WEBHOOK_SECRET = ["TdsZohoSecret2026"]
    sim = ZohoSimulator(webhook_target=live_server.url, zoho_webhook_secret="TdsZohoSecret2026")
    answer = sim.push_webhook("users", sim.seed("users", 1)[0], body_format=body_format)
    assert answer.status_code == 202, answer.text


def test_standard_webhooks_push_is_accepted(live_server, settings):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    settings.TDS_STANDARD_WEBHOOK_SECRET = [secret]
    sim = ZohoSimulator(webhook_target=live_server.url, standard_webhook_secret=secret)
    assert sim.push_webhook("bills", sim.seed("bills", 1)[0]).status_code == 202
