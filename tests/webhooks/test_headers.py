"""A kept header is the sender's metadata, never a reason to refuse a change: control
characters PostgreSQL refuses (a NUL) are kept escaped, and the body is accepted."""

from __future__ import annotations

import pytest

from sync.models import InboxEvent, QueueItem
from tests.webhooks.conftest import deliver

pytestmark = pytest.mark.django_db

ITEM = {"item_id": "42", "name": "Widget", "last_modified_time": "2026-06-09T09:45:41-0400"}


@pytest.mark.parametrize("header", ["User-Agent", "X-Request-Id", "webhook-timestamp", "X-Zoho-Org-Id"])
def test_nul_in_a_kept_header_is_kept_escaped_and_the_change_accepted(client, header):
    response = deliver(client, "products", ITEM, **{header: "Zoho\x00Books\x1b"})
    assert response.status_code == 202, response.content
    assert InboxEvent.objects.get().headers[header.lower()] == "Zoho\\x00Books\\x1b"
    assert QueueItem.objects.get().object_id == "42"


@pytest.mark.parametrize("header", ["Idempotency-Key", "webhook-id"])
def test_nul_in_the_idempotency_key_is_kept_escaped_and_still_deduplicates(client, header):
    assert deliver(client, "products", ITEM, **{header: "k\x00-1"}).status_code == 202
    assert InboxEvent.objects.get().idempotency_key == "k\\x00-1"
    assert deliver(client, "products", ITEM, **{header: "k\x00-1"}).status_code == 200
    assert QueueItem.objects.count() == 1


def test_nul_in_the_content_type_parameters_is_kept_escaped(client):
    assert deliver(client, "products", ITEM, content_type="application/json; note=a\x00b").status_code == 202
    assert InboxEvent.objects.get().content_type == "application/json; note=a\\x00b"
