"""The database failing mid-request: 503, never 500, and nothing half-written.

The fault is injected at one named seam, `connection.execute_wrapper`, which sits between Django
and the driver: the view, the transaction and the rollback are all real. On PostgreSQL the inbox
and queue rows are one statement, so "the first statement touching the queue" is that statement
and nothing reaches the database; test_one_statement.py shows the database itself undoing the
inbox row when it refuses the queue row.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection

from sync.models import DeadLetter, InboxEvent, QueueItem
from tdscore import config
from tests.webhooks.conftest import deliver

ITEM = {"item_id": "42", "name": "Widget", "last_modified_time": "2026-06-09T09:45:41-0400"}


@contextmanager
def database_fails_on(table: str | None):
    """Raise OperationalError on the first statement touching `table` (None: the first statement)."""
    failed = threading.Event()

    def refuse(execute, sql, params, many, context):
        if not failed.is_set() and (table is None or f'"{table}"' in sql):
            failed.set()
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield failed


@pytest.mark.django_db(transaction=True)
def test_queue_insert_failing_is_503_and_leaves_no_inbox_row(client):
    with database_fails_on("tds_sync_queue") as failed:
        response = deliver(client, "products", ITEM)
    assert failed.is_set()
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"
    assert not InboxEvent.objects.exists()
    assert not QueueItem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_first_query_failing_is_503(client):
    with database_fails_on(None) as failed:
        response = deliver(client, "products", ITEM)
    assert failed.is_set()
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert not InboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_dead_letter_insert_failing_leaves_no_inbox_row(client):
    with database_fails_on("tds_dead_letter_queue"):
        response = deliver(client, "invoices", {"invoice": {"invoice_number": "INV-1"}})
    assert response.status_code == 503
    assert not InboxEvent.objects.exists()
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_delivery_retried_after_an_outage_is_accepted(client):
    with database_fails_on("tds_sync_queue"):
        assert deliver(client, "products", ITEM).status_code == 503
    assert deliver(client, "products", ITEM).status_code == 202
    assert QueueItem.objects.count() == InboxEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_refused_request_while_the_database_is_down_is_still_401(client):
    # The failure throttle reads its limits from the configuration table, which is down too.
    config.invalidate()
    with database_fails_on(None) as failed:
        response = deliver(client, "products", ITEM, auth=False)
    assert failed.is_set()
    assert response.status_code == 401
