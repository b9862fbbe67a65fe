"""On PostgreSQL the webhook's one statement runs as a prepared statement, reused per connection.

`pg_prepared_statements` is the server's own list for the session: it says whether the statement
was prepared and how often it ran. Values then travel typed (jsonb, bytea, timestamptz, inet,
uuid, NULLs), so every kind of delivery goes through it here, in autocommit as in production.
TDS_DB_PREPARED_STATEMENTS=false (prepare_threshold None) turns preparing off: the statement still
runs, unprepared. These tests open their connection with preparing on, unless they say otherwise;
the rest of the suite runs as the environment says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, connections

from sync import payloads
from sync.models import InboxEvent, QueueItem
from tests.webhooks.conftest import deliver, sample
from tests.webhooks.test_bodies import SAMPLES

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
ITEM = {"item_id": "42", "name": "Widget", "last_modified_time": "2026-06-09T09:45:41-0400"}


def prepared_runs() -> list[int]:
    """For each prepared webhook statement on this connection, how many times it ran."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'WITH inbox AS (INSERT INTO %%' ORDER BY prepare_time"
        )
        return [runs for (runs,) in cursor.fetchall()]


def item(version: str, **fields) -> dict:
    return {**ITEM, "last_modified_time": version, **fields}


@contextmanager
def preparing(threshold: int | None):
    """A fresh connection opened with `prepare_threshold` as the settings give it (and a fresh
    pool: a pooled connection keeps its session, and its options, when closed)."""
    options = connection.settings_dict["OPTIONS"]
    before = options.get("prepare_threshold")
    options["prepare_threshold"] = threshold
    connection.close()
    connection.close_pool()
    try:
        yield
    finally:
        options["prepare_threshold"] = before
        connection.close()
        connection.close_pool()


@pytest.fixture(autouse=True)
def prepared_statements_on():
    # Whatever TDS_DB_PREPARED_STATEMENTS says for the run: the rest of the suite covers "off".
    with preparing(5):
        yield


def test_the_statement_is_prepared_once_and_reused(client):
    assert deliver(client, "products", item("2026-06-09T09:00:00-0400")).status_code == 202
    assert deliver(client, "products", item("2026-06-09T10:00:00-0400")).status_code == 202
    assert deliver(client, "products", item("2026-06-09T11:00:00-0400")).status_code == 202
    assert prepared_runs() == [3]
    assert [row.skip_reason for row in QueueItem.objects.order_by("id")] == ["superseded", "superseded", ""]


def test_with_preparing_off_the_statement_runs_unprepared(client):
    with preparing(None):
        assert deliver(client, "products", item("2026-06-09T09:00:00-0400")).status_code == 202
        assert deliver(client, "products", item("2026-06-09T10:00:00-0400")).status_code == 202
        assert prepared_runs() == []
        assert QueueItem.objects.filter(skip_reason="superseded").count() == 1


def test_the_setting_comes_from_the_environment():
    def threshold(value: str | None) -> object:
        env = {**os.environ, "DATABASE_URL": "postgres://u@db.invalid:5432/x", "TDS_ENV_FILE": os.devnull}
        env.pop("TDS_DB_PREPARED_STATEMENTS", None)
        if value is not None:
            env["TDS_DB_PREPARED_STATEMENTS"] = value
        code = "from tdscore import settings; print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])"
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert threshold(None) == "5"
    assert threshold("false") == "None"


@pytest.mark.parametrize(("name", "endpoint", "entity", "object_id"), SAMPLES)
def test_every_sample_round_trips_through_the_prepared_statement(client, name, endpoint, entity, object_id):
    body = json.dumps(sample(name)).encode()
    response = deliver(client, endpoint, body, **{"User-Agent": "Zoho", "X-Request-Id": "r-1"})
    assert response.status_code == 202, response.content
    event = InboxEvent.objects.get()
    row = QueueItem.objects.get()
    assert (bytes(event.raw_body), event.headers["x-request-id"], event.remote_addr) == (body, "r-1", "127.0.0.1")
    assert (row.entity, row.object_id, row.inbox_event_id, row.status) == (entity, object_id, event.id, "pending")
    assert row.content_hash == payloads.content_hash(row.payload)  # the jsonb holds what was hashed
    assert prepared_runs() == [1]


def test_delete_with_and_without_a_body(client):
    assert deliver(client, "products", item("2026-06-09T09:00:00-0400")).status_code == 202
    assert deliver(client, "products", ITEM, method="DELETE").status_code == 202
    assert deliver(client, "products", b"", method="DELETE", query="?item_id=43").status_code == 202
    rows = QueueItem.objects.order_by("id")
    assert [(r.object_id, r.operation, r.skip_reason) for r in rows] == [
        ("42", "upsert", "superseded"),
        ("42", "delete", ""),
        ("43", "delete", ""),
    ]
    assert sum(prepared_runs()) == 3


def test_without_a_version_nothing_is_superseded(client):
    unversioned = {"item_id": "42", "name": "Widget"}
    assert deliver(client, "products", unversioned).status_code == 202
    assert deliver(client, "products", {**unversioned, "name": "Gadget"}).status_code == 202
    assert list(QueueItem.objects.values_list("version", "status")) == [(None, "pending"), (None, "pending")]
    assert prepared_runs() == [2]


def test_duplicate_and_conflict_after_the_prepared_statement(client):
    first = deliver(client, "products", ITEM, **{"Idempotency-Key": "k-1"})
    again = deliver(client, "products", ITEM, **{"Idempotency-Key": "k-1"})
    other = deliver(client, "products", {**ITEM, "name": "Other"}, **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 409)
    assert again.json()["event_id"] == other.json()["event_id"] == first.json()["event_id"]
    assert InboxEvent.objects.get().duplicate_count == 1
    assert QueueItem.objects.count() == 1


def test_content_jsonb_cannot_hold_is_dead_lettered_and_the_next_delivery_still_prepared(client):
    deliver(client, "products", ITEM)
    refused = b'{"item_id": "43", "name": "nul \\u0000", "last_modified_time": "2026-06-09T09:50:00-0400"}'
    assert deliver(client, "products", refused).status_code == 202
    assert deliver(client, "products", item("2026-06-09T10:00:00-0400")).status_code == 202
    assert InboxEvent.objects.filter(status=InboxEvent.Status.REJECTED).count() == 1
    assert QueueItem.objects.count() == 2
    assert prepared_runs() == [2]  # the dead-lettered one never reached the statement


def test_a_reopened_connection_prepares_again(client):
    assert deliver(client, "products", item("2026-06-09T09:00:00-0400")).status_code == 202
    connection.close()
    connection.close_pool()  # a new session, as after a failed health check or the pool's max_lifetime
    assert deliver(client, "products", item("2026-06-09T10:00:00-0400")).status_code == 202
    assert prepared_runs() == [1]
    assert QueueItem.objects.count() == 2


@contextmanager
def migration(*statements: str):
    """DDL from another connection, as a migration run while gunicorn keeps its connections."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        yield other
    finally:
        other.close()


def test_ddl_under_a_prepared_statement_is_replanned(client):
    assert deliver(client, "products", item("2026-06-09T09:00:00-0400")).status_code == 202
    add = "ALTER TABLE tds_sync_queue ADD COLUMN tds_test_extra integer DEFAULT 7"
    widen = "ALTER TABLE tds_inbox_events ALTER COLUMN content_type TYPE text"
    with migration(add, widen) as other:
        try:
            assert deliver(client, "products", item("2026-06-09T10:00:00-0400")).status_code == 202
            assert prepared_runs() == [2]
        finally:
            with other.cursor() as cursor:
                cursor.execute("ALTER TABLE tds_sync_queue DROP COLUMN tds_test_extra")
                cursor.execute("ALTER TABLE tds_inbox_events ALTER COLUMN content_type TYPE varchar(200)")
    assert QueueItem.objects.filter(skip_reason="superseded").count() == 1


@contextmanager
def server_forgets_the_statement():
    # Behind psycopg's back, as a transaction-pooling PgBouncer < 1.21 switching backends would.
    connection.connection.pgconn.exec_(b"DEALLOCATE ALL")
    yield


@contextmanager
def migration_changes_the_result_type():
    # "cached plan must not change result type": the statement returns the inbox id.
    with migration("ALTER TABLE tds_inbox_events ALTER COLUMN id TYPE integer") as other:
        try:
            yield
        finally:
            with other.cursor() as cursor:
                cursor.execute("ALTER TABLE tds_inbox_events ALTER COLUMN id TYPE bigint")


@pytest.mark.parametrize("stale", [server_forgets_the_statement, migration_changes_the_result_type])
def test_a_statement_that_can_no_longer_run_is_503_then_stored_on_retry(client, stale):
    assert deliver(client, "products", item("2026-06-09T09:00:00-0400")).status_code == 202
    with stale():
        assert deliver(client, "products", item("2026-06-09T10:00:00-0400")).status_code == 503
        assert InboxEvent.objects.count() == QueueItem.objects.count() == 1
        # The connection was dropped, so the sender's retry prepares the statement afresh.
        assert deliver(client, "products", item("2026-06-09T10:00:00-0400")).status_code == 202
        assert prepared_runs() == [1]
    assert InboxEvent.objects.count() == QueueItem.objects.count() == 2
