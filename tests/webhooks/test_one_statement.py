"""A delivery is stored all or nothing by the database itself, not only by the code around it.

On PostgreSQL the inbox row, its queue row and the supersede are ONE statement in autocommit
(`sync.inbox`); on SQLite they are a transaction. Either way a queue row the
database refuses must leave no inbox row behind, and nothing is acknowledged. The refusal here is
the database's own (a constraint or a trigger added for the test), never a mock.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from django.db import connection

from sync.models import DeadLetter, InboxEvent, QueueItem
from tests.webhooks.conftest import deliver

pytestmark = pytest.mark.django_db(transaction=True)

ITEM = {"item_id": "42", "name": "Widget", "last_modified_time": "2026-06-09T09:45:41-0400"}


@contextmanager
def queue_refuses_new_rows():
    """The queue table refuses every new row, from inside the database."""
    if connection.vendor == "postgresql":
        # NOT VALID: existing rows are not checked, every new row is.
        create = "ALTER TABLE tds_sync_queue ADD CONSTRAINT tds_test_refuse CHECK (false) NOT VALID"
        drop = "ALTER TABLE tds_sync_queue DROP CONSTRAINT tds_test_refuse"
    else:
        create = (
            "CREATE TRIGGER tds_test_refuse BEFORE INSERT ON tds_sync_queue BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        drop = "DROP TRIGGER tds_test_refuse"
    with connection.cursor() as cursor:
        cursor.execute(create)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(drop)


def test_queue_row_the_database_refuses_leaves_no_inbox_row_and_is_503(client):
    with queue_refuses_new_rows():
        response = deliver(client, "products", ITEM)
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"
    assert not InboxEvent.objects.exists()
    assert not QueueItem.objects.exists()


def test_delivery_refused_then_retried_is_stored_once(client):
    with queue_refuses_new_rows():
        deliver(client, "products", ITEM)
    assert deliver(client, "products", ITEM).status_code == 202
    assert InboxEvent.objects.count() == QueueItem.objects.count() == 1


@pytest.mark.postgres
def test_accepted_webhook_is_one_statement_on_postgresql(client, django_assert_num_queries):
    # The inbox row, its queue row and the supersede: one round trip and its own commit.
    deliver(client, "products", {**ITEM, "last_modified_time": "2026-06-09T09:00:00-0400"})
    with django_assert_num_queries(1):
        response = deliver(client, "products", ITEM)
    assert response.status_code == 202
    older, newer = QueueItem.objects.order_by("id")
    assert (older.skip_reason, newer.inbox_event_id) == ("superseded", response.json()["event_id"])


@pytest.mark.postgres
def test_content_jsonb_cannot_hold_is_accepted_and_dead_lettered_in_autocommit(client):
    response = deliver(client, "products", b'{"item_id": "42", "name": "nul \\u0000 here"}')
    assert response.status_code == 202
    assert InboxEvent.objects.get().status == InboxEvent.Status.REJECTED
    assert DeadLetter.objects.get().reason == "validation"
    assert not QueueItem.objects.exists()


@contextmanager
def queue_refuses_names_that_are_not_numbers():
    """A refusal only the database sees: a CHECK that casts the payload's name, so PostgreSQL
    itself raises a DataError (22P02) for any other name."""
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE tds_sync_queue ADD CONSTRAINT tds_test_numeric_name"
            " CHECK ((payload->>'name')::int IS NOT NULL) NOT VALID"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE tds_sync_queue DROP CONSTRAINT tds_test_numeric_name")


@pytest.mark.postgres
def test_content_the_database_refuses_is_kept_dead_lettered_and_never_echoed(client):
    with queue_refuses_names_that_are_not_numbers():
        response = deliver(client, "products", ITEM)
        assert deliver(client, "products", {**ITEM, "name": "7"}).status_code == 202
    assert response.status_code == 202
    event = InboxEvent.objects.get(pk=response.json()["event_id"])
    dead = DeadLetter.objects.get()
    assert (event.status, bytes(event.raw_body), dead.inbox_event_id) == (
        "rejected",
        json.dumps(ITEM).encode(),
        event.pk,
    )
    assert (dead.reason, dead.error) == ("validation", "the database refused the content (DataError)")
    assert "Widget" not in response.content.decode() and "invalid input" not in dead.error
    assert QueueItem.objects.get().payload["name"] == "7"
