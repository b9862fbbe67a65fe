"""Each scheme: good, missing, wrong, rotated (the second value of a comma list); the throttle."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from sync.config_keys import WEBHOOK_AUTH_FAILURE_LIMIT, WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS
from sync.models import InboxEvent
from sync.webhook_auth import zoho_signed_messages
from tdscore import config
from tests.webhooks.conftest import SECRETS, STANDARD_SECRETS, TOKENS, ZOHO_SECRETS, deliver

pytestmark = pytest.mark.django_db

ITEM = {"item": {"item_id": "4815000000044208", "name": "Widget", "last_modified_time": "2026-06-09T09:45:41-0400"}}


def source_of(response) -> str:
    return InboxEvent.objects.get(pk=response.json()["event_id"]).source


def tds_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- X-TDS-Token / ?token= ---------------------------------------------------------------------


def test_token_header_is_accepted(client):
    response = deliver(client, "products", ITEM, auth=False, **{"X-TDS-Token": TOKENS[0]})
    assert response.status_code == 202
    assert source_of(response) == InboxEvent.Source.TOKEN


def test_token_query_parameter_is_accepted(client):
    response = deliver(client, "products", ITEM, auth=False, query=f"?token={TOKENS[0]}")
    assert response.status_code == 202
    assert source_of(response) == InboxEvent.Source.TOKEN


def test_rotated_token_second_value_is_accepted(client):
    response = deliver(client, "products", ITEM, auth=False, **{"X-TDS-Token": TOKENS[1]})
    assert response.status_code == 202


def test_wrong_token_is_refused_and_nothing_is_stored(client):
    response = deliver(client, "products", ITEM, auth=False, **{"X-TDS-Token": "token-guess"})
    assert response.status_code == 401
    assert response.json() == {"status": "error", "error": "unauthorized", "detail": "no valid token or signature"}
    assert not InboxEvent.objects.exists()


def test_missing_credentials_are_refused(client):
    assert deliver(client, "products", ITEM, auth=False).status_code == 401
    assert not InboxEvent.objects.exists()


def test_nothing_configured_refuses_even_an_empty_token(client, settings):
    settings.TDS_WEBHOOK_TOKEN = []
    assert deliver(client, "products", ITEM, auth=False, query="?token=").status_code == 401


# --- X-TDS-Signature ---------------------------------------------------------------------------


def test_tds_signature_is_accepted(client):
    body = json.dumps(ITEM).encode()
    response = deliver(client, "products", body, auth=False, **{"X-TDS-Signature": tds_signature(SECRETS[0], body)})
    assert response.status_code == 202
    assert source_of(response) == InboxEvent.Source.SIGNATURE


def test_rotated_tds_signature_is_accepted(client):
    body = json.dumps(ITEM).encode()
    response = deliver(client, "products", body, auth=False, **{"X-TDS-Signature": tds_signature(SECRETS[1], body)})
    assert response.status_code == 202


def test_tds_signature_of_another_body_is_refused(client):
    body = json.dumps(ITEM).encode()
    signature = tds_signature(SECRETS[0], body + b" ")
    assert deliver(client, "products", body, auth=False, **{"X-TDS-Signature": signature}).status_code == 401


def test_tds_signature_without_its_prefix_is_refused(client):
    body = json.dumps(ITEM).encode()
    signature = tds_signature(SECRETS[0], body).removeprefix("sha256=")
    assert deliver(client, "products", body, auth=False, **{"X-TDS-Signature": signature}).status_code == 401


# --- X-Zoho-Webhook-Signature (vector in zohosim/samples/README.md) --------------------------

VECTOR_QUERY = "?org=60012345&event=item.updated"
VECTOR_BODY = b'{"item":{"item_id":"4815000000044208","name":"Widget","last_modified_time":"2026-06-09T09:45:41-0400"}}'
VECTOR_HEX = "ed248d3f2532da49bbd88c924883c5ecd30c0fad909d8585e3ce8731066d2cf5"
VECTOR_B64 = "7SSNPyUy2km72IySSIPF7NMMD62QnYWF486HMQZtLPU="
FORM_BODY = b"item_id=4815000000044208&name=Widget"
FORM_HEX = "bcd473b82aaaef042fd3cd2ed54a85404e09b167a986a30ef16bc1d8ca5630c7"


def test_zoho_signed_string_is_sorted_query_then_body():
    messages = zoho_signed_messages(VECTOR_QUERY[1:], "application/json", VECTOR_BODY)
    assert messages == [b"eventitem.updatedorg60012345" + VECTOR_BODY]


def test_zoho_signed_string_of_a_form_is_sorted_query_then_sorted_form():
    messages = zoho_signed_messages(VECTOR_QUERY[1:], "application/x-www-form-urlencoded", FORM_BODY)
    assert messages[0] == b"eventitem.updatedorg60012345item_id4815000000044208nameWidget"


@pytest.mark.parametrize("signature", [VECTOR_HEX, VECTOR_HEX.upper(), VECTOR_B64])
def test_zoho_signature_vector_is_accepted_as_hex_or_base64(client, signature):
    # The vector's secret is the second of the list: this is also the rotation case.
    assert ZOHO_SECRETS[1] == "TdsZohoSecret2026"
    response = deliver(
        client, "products", VECTOR_BODY, auth=False, query=VECTOR_QUERY, **{"X-Zoho-Webhook-Signature": signature}
    )
    assert response.status_code == 202
    event = InboxEvent.objects.get(pk=response.json()["event_id"])
    assert (event.source, event.object_id) == (InboxEvent.Source.ZOHO_SIGNATURE, "4815000000044208")


def test_zoho_signature_form_vector_is_accepted(client):
    response = deliver(
        client,
        "products",
        FORM_BODY,
        auth=False,
        query=VECTOR_QUERY,
        content_type="application/x-www-form-urlencoded",
        **{"X-Zoho-Webhook-Signature": FORM_HEX},
    )
    assert response.status_code == 202
    assert InboxEvent.objects.get().object_id == "4815000000044208"


def test_zoho_signature_with_the_first_secret_is_accepted(client):
    signature = hmac.new(ZOHO_SECRETS[0].encode(), b"eventitem.updatedorg60012345" + VECTOR_BODY, hashlib.sha256)
    response = deliver(
        client,
        "products",
        VECTOR_BODY,
        auth=False,
        query=VECTOR_QUERY,
        **{"X-Zoho-Webhook-Signature": signature.hexdigest()},
    )
    assert response.status_code == 202


def test_zoho_signature_over_other_query_parameters_is_refused(client):
    response = deliver(
        client,
        "products",
        VECTOR_BODY,
        auth=False,
        query="?org=60012345&event=item.deleted",
        **{"X-Zoho-Webhook-Signature": VECTOR_HEX},
    )
    assert response.status_code == 401


# --- Standard Webhooks (reference vector of standard-webhooks/standard-webhooks) -----------------

SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def standard_headers(signature: str = SW_SIGNATURE, msg_id: str = SW_ID) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(SW_TIMESTAMP), "webhook-signature": signature}


def at_vector_time(offset_seconds: int = 0):
    return time_machine.travel(datetime.fromtimestamp(SW_TIMESTAMP, tz=UTC) + timedelta(seconds=offset_seconds))


def test_standard_webhooks_reference_vector_is_accepted(client):
    with at_vector_time():
        response = deliver(client, "users", SW_BODY, auth=False, **standard_headers())
    assert response.status_code == 202
    event = InboxEvent.objects.get(pk=response.json()["event_id"])
    assert event.source == InboxEvent.Source.STANDARD_WEBHOOKS
    # webhook-id is the idempotency key.
    assert event.idempotency_key == SW_ID


def test_standard_webhooks_signature_among_several_is_accepted(client):
    with at_vector_time():
        headers = standard_headers(signature="v1,bm90LXRoaXMtb25l v2,abc " + SW_SIGNATURE)
        assert deliver(client, "users", SW_BODY, auth=False, **headers).status_code == 202


def test_standard_webhooks_first_secret_is_accepted(client):
    key = base64.b64decode(STANDARD_SECRETS[0].removeprefix("whsec_"))
    digest = hmac.new(key, f"{SW_ID}.{SW_TIMESTAMP}.".encode() + SW_BODY, hashlib.sha256).digest()
    with at_vector_time():
        headers = standard_headers(signature="v1," + base64.b64encode(digest).decode())
        assert deliver(client, "users", SW_BODY, auth=False, **headers).status_code == 202


@pytest.mark.parametrize("offset", [301, -301])
def test_standard_webhooks_timestamp_over_five_minutes_away_is_refused(client, offset):
    with at_vector_time(offset):
        assert deliver(client, "users", SW_BODY, auth=False, **standard_headers()).status_code == 401


@pytest.mark.parametrize("offset", [299, -299])
def test_standard_webhooks_timestamp_within_five_minutes_is_accepted(client, offset):
    with at_vector_time(offset):
        assert deliver(client, "users", SW_BODY, auth=False, **standard_headers()).status_code == 202


def test_standard_webhooks_signature_for_another_id_is_refused(client):
    with at_vector_time():
        headers = standard_headers(msg_id="msg_other")
        assert deliver(client, "users", SW_BODY, auth=False, **headers).status_code == 401


# --- Throttling failures ---------------------------------------------------------------------


def test_repeated_failures_from_one_address_are_throttled(client):
    config.update(WEBHOOK_AUTH_FAILURE_LIMIT, 3)
    answers = [deliver(client, "products", ITEM, auth=False).status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]


def test_throttled_address_still_gets_in_with_valid_credentials(client):
    config.update(WEBHOOK_AUTH_FAILURE_LIMIT, 1)
    for _ in range(3):
        deliver(client, "products", ITEM, auth=False)
    assert deliver(client, "products", ITEM).status_code == 202


def test_failure_count_expires_with_its_window(client, settings):
    # Moved time expires keys in the in-process cache; Redis (REDIS_URL) keeps its own clock.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    config.update(WEBHOOK_AUTH_FAILURE_LIMIT, 1)
    config.update(WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS, 1)
    with time_machine.travel(datetime(2026, 6, 9, 12, 0, tzinfo=UTC), tick=False) as clock:
        deliver(client, "products", ITEM, auth=False)
        assert deliver(client, "products", ITEM, auth=False).status_code == 429
        clock.shift(timedelta(seconds=2))
        assert deliver(client, "products", ITEM, auth=False).status_code == 401


def test_authenticated_deliveries_are_not_rate_limited(client):
    config.update(WEBHOOK_AUTH_FAILURE_LIMIT, 1)
    answers = {deliver(client, "products", {"item_id": str(n)}).status_code for n in range(30)}
    assert answers == {202}
