"""Storing a delivery: its inbox row and its queue row (or its dead letter), all or nothing.

Insert-or-return, never check-then-insert: `ON CONFLICT (idempotency_key) DO NOTHING`
lets the database decide between two concurrent identical deliveries (the second waits for the
first to commit, then conflicts). A repeat with the same content hash raises `duplicate_count`
on the row that holds the key; with another content hash it is a conflict and changes nothing.

On PostgreSQL a queued delivery is ONE prepared statement in autocommit: the inbox row, its queue
row and the supersede of older waiting versions (docs/BENCHMARKS.md "Webhook ingest"). Elsewhere
it is one transaction. The statements below are whole and named, each with the plan it relies on.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from django.db import DatabaseError, connection, transaction

from sync import queue, queue_sql, wakeup
from sync.models import InboxEvent, QueueItem


class StoreOutcome(StrEnum):
    """What storing a webhook in the inbox came to: a new event, a repeat of one, or a conflict."""

    INSERTED = "inserted"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


def _columns(model, *, but: str = "") -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key and f.attname != but]


_INBOX_FIELDS = _columns(InboxEvent)
_QUEUE_FIELDS = _columns(QueueItem)  # every column but the id; inbox_event_id comes from `inbox`
_QUEUE_VALUES = [f.attname for f in _QUEUE_FIELDS if f.attname != "inbox_event_id"]
_PAYLOAD_AT = _QUEUE_VALUES.index("payload")


def _names(fields: list) -> str:
    return ", ".join(f'"{f.column}"' for f in fields)


# Plan: an index probe of the unique index on idempotency_key (tds_inbox_events_idempotency_key_key),
# which also arbitrates the conflict.
INSERT_INBOX = (
    f'INSERT INTO "tds_inbox_events" ({_names(_INBOX_FIELDS)}) VALUES ({", ".join(["%s"] * len(_INBOX_FIELDS))})'
    ' ON CONFLICT ("idempotency_key") DO NOTHING RETURNING "id"'
)

# PostgreSQL only (SQLite has no INSERT or UPDATE inside WITH). The queue row goes in only when the
# inbox row did (`SELECT … FROM inbox` is empty on a conflict). Plan: INSERT_INBOX's probe, then a
# plain insert; no scan.
_QUEUED = (
    f'queued AS (INSERT INTO "tds_sync_queue" ({_names(_QUEUE_FIELDS)}) SELECT '
    + ", ".join("inbox.id" if f.attname == "inbox_event_id" else "%s" for f in _QUEUE_FIELDS)
    + " FROM inbox)"
)
INSERT_INBOX_AND_QUEUE_ROW = f"WITH inbox AS ({INSERT_INBOX}), {_QUEUED} SELECT id FROM inbox"

# The same, for a versioned change, with queue.supersede_older()'s UPDATE: older waiting versions of
# the object are skipped (`superseded`) and their inbox rows `processed`. Every part sees the
# snapshot taken before the statement, so the supersede never sees the row inserted beside it.
# Plan: the supersede probes tds_queue_waiting_object (entity, object_id; partial on waiting rows),
# a handful of rows at most; `processed` updates by primary key.
_SUPERSEDING = queue._superseding(QueueItem(), now=None, only_if="EXISTS (SELECT 1 FROM inbox)")[0]
INSERT_INBOX_AND_QUEUE_ROW_SUPERSEDING = (
    f"WITH inbox AS ({INSERT_INBOX}), {_QUEUED}, superseded AS ({_SUPERSEDING}),"
    f" processed AS ({queue_sql.mark_inbox_processed('SELECT inbox_event_id FROM superseded')}) SELECT id FROM inbox"
)

# A repeat: the holder of the key, if its content is ours. Plan: the unique index on idempotency_key.
COUNT_DUPLICATE = (
    'UPDATE "tds_inbox_events" SET "duplicate_count" = "duplicate_count" + 1, "last_duplicate_at" = %s'
    ' WHERE "idempotency_key" = %s AND "content_hash" = %s RETURNING "id"'
)

# A conflict: who holds the key. Plan: the unique index on idempotency_key.
KEY_HOLDER = 'SELECT "id" FROM "tds_inbox_events" WHERE "idempotency_key" = %s'

# The object's latest change, whatever brought it (webhook, pull, replay): a derived key that
# conflicts is a repeat only of the latest. Plan: tds_queue_object (entity, object_id, status)
# finds the object's rows, a few, sorted for the top one. Run only when a derived key conflicts.
LATEST_CHANGE = (
    'SELECT "id", "content_hash", "operation" FROM "tds_sync_queue"'
    ' WHERE "entity" = %s AND "object_id" = %s ORDER BY "id" DESC LIMIT 1'
)


def store_queued(event: InboxEvent, item: QueueItem, *, now: datetime, revertible: bool) -> tuple[int, StoreOutcome]:
    """Store `event` and, when it is new, `item` (unsaved, linked to it) with the supersede.

    `revertible`: the key is derived (`<entity>:<object_id>:<content hash>`) and the payload
    has no version, so only arrival orders it. Then a conflict is a repeat only when the object's
    latest change is this same content: A, B, then A again is a revert, stored under the key
    `<derived>:after:<id of B's queue row>` and applied after B; A, A is one row. (A versioned
    repeat is a repeat wherever it arrives: its version orders it.)
    """
    event_id = _insert_queued(event, item, now=now)
    if event_id is None and revertible:
        latest = _latest_change(item.entity, item.object_id)
        if latest is not None and latest[1:] != (item.content_hash, item.operation):
            event.idempotency_key = f"{event.idempotency_key}:after:{latest[0]}"
            event_id = _insert_queued(event, item, now=now)
    if event_id is not None:
        # Once the statement has committed (it is its own transaction in autocommit): the drainers
        # are woken to a row they can see.
        wakeup.after_commit()
        return event_id, StoreOutcome.INSERTED
    return _repeat(event, now=now)


def store_dead_lettered(
    event: InboxEvent, *, entity: str, object_id: str, payload: Any, error: str, now: datetime
) -> tuple[int, StoreOutcome]:
    """Store `event` as `rejected` with a `validation` dead letter pointing at it (a shape or content
    failure found at ingest, before any queue row). Rare, so a plain transaction."""
    with transaction.atomic():
        event_id = _insert(event)
        if event_id is None:
            return _repeat(event, now=now)
        dead = queue.dead_letter_at_ingest(inbox_event=event, entity=entity, payload=payload, error=error, now=now)
        if object_id:
            dead.object_id = object_id
            dead.save(update_fields=["object_id"])
    return event_id, StoreOutcome.INSERTED


def store_rejected(event: InboxEvent, *, now: datetime) -> tuple[int, StoreOutcome]:
    """Store an unparseable delivery (`event.status` rejected): kept, never queued."""
    with transaction.atomic():
        event_id = _insert(event)
        return (event_id, StoreOutcome.INSERTED) if event_id is not None else _repeat(event, now=now)


def _insert_queued(event: InboxEvent, item: QueueItem, *, now: datetime) -> int | None:
    if connection.vendor != "postgresql":
        with transaction.atomic():
            event_id = _insert(event)
            if event_id is not None:
                item.inbox_event = event
                item.save(force_insert=True)
                if item.version is not None:
                    queue.supersede_older(item, now=now)
            return event_id
    # The connection itself, not the proxy `connection`: every attribute read through the proxy
    # is a thread-local lookup, and each field's preparation reads several.
    db = transaction.get_connection()
    # Values go to psycopg as they are (strings, numbers, aware datetimes, None), as queue._copy_rows()
    # sends them: Django's per-field preparation cost more than the rest of the statement.
    values = [getattr(item, name) for name in _QUEUE_VALUES]
    values[_PAYLOAD_AT] = _QUEUE_FIELDS[_PAYLOAD_AT].get_db_prep_save(item.payload, db)
    params = [*_inbox_values(event, db), *values]
    if item.version is None:
        sql = INSERT_INBOX_AND_QUEUE_ROW
    else:
        sql = INSERT_INBOX_AND_QUEUE_ROW_SUPERSEDING
        params += [*queue._superseding(item, now=now)[1], InboxEvent.Status.PROCESSED]
    # A caller's open transaction (the test suite, ATOMIC_REQUESTS) gets a savepoint, so a refused
    # statement does not poison it; in autocommit the one statement is its own transaction.
    with transaction.atomic() if db.in_atomic_block else nullcontext():
        row = _execute_prepared(db, sql, params)
    if row is None:
        return None
    event.pk = item.inbox_event_id = row[0]
    return row[0]


def _inbox_values(event: InboxEvent, db) -> list[Any]:
    return [f.get_db_prep_save(getattr(event, f.attname), db) for f in _INBOX_FIELDS]


def _insert(event: InboxEvent) -> int | None:
    """INSERT_INBOX: the new row's id (also set on `event`), or None when the key is taken."""
    db = transaction.get_connection()
    with db.cursor() as cursor:
        cursor.execute(INSERT_INBOX, _inbox_values(event, db))
        row = cursor.fetchone()
    if row is None:
        return None
    event.pk = row[0]
    return row[0]


def _repeat(event: InboxEvent, *, now: datetime) -> tuple[int, StoreOutcome]:
    """The key is taken: a duplicate of its holder, or a conflict with it."""
    with connection.cursor() as cursor:
        cursor.execute(
            COUNT_DUPLICATE,
            [connection.ops.adapt_datetimefield_value(now), event.idempotency_key, event.content_hash],
        )
        row = cursor.fetchone()
        if row:
            return row[0], StoreOutcome.DUPLICATE
        cursor.execute(KEY_HOLDER, [event.idempotency_key])
        row = cursor.fetchone()
    if row is None:
        raise KeyReleased(event.idempotency_key)
    return row[0], StoreOutcome.CONFLICT


class KeyReleased(DatabaseError):
    """The holder of the key was deleted (retention) between our statements: the sender's retry of
    this 503 is a fresh delivery. Rare enough not to loop on."""


def _latest_change(entity: str, object_id: str) -> tuple[int, str, str] | None:
    with connection.cursor() as cursor:
        cursor.execute(LATEST_CHANGE, [entity, object_id])
        return cursor.fetchone()


class _PreparingCursor(psycopg.Cursor):
    """A psycopg cursor that binds values on the server and prepares every statement it runs, when
    the connection allows preparing (`prepare_threshold` not None; TDS_DB_PREPARED_STATEMENTS)."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


# SQLSTATEs meaning the statement psycopg prepared on this connection can no longer run there: the
# server does not have it (26000: a pooler switched backends, a DEALLOCATE ALL) or DDL changed what
# it returns (0A000 "cached plan must not change result type").
_STALE_PREPARED = {"26000", "0A000"}


def _execute_prepared(db, sql: str, params: list[Any]) -> tuple | None:
    """Run `sql` (one of the INSERT_INBOX_AND_QUEUE_ROW statements) prepared; its first row.

    Parsing and planning that 4-part statement cost PostgreSQL twice what running it does (backend
    CPU 615–660 µs per statement with the values inlined, 275–280 µs prepared; docs/BENCHMARKS.md).
    Django's cursors bind values on the client and so never prepare: this cursor is psycopg's own,
    wrapped as db.cursor() wraps Django's (health check first, execute_wrapper hooks, psycopg errors
    raised as django.db ones, the query logged when queries are), on the same connection.
    """
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    cursor = _PreparingCursor(db.connection)
    try:
        with db.make_debug_cursor(cursor) if db.queries_logged else db.make_cursor(cursor) as wrapped:
            wrapped.execute(sql, params)
            return wrapped.fetchone()
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) in _STALE_PREPARED:
            # psycopg would keep sending the dead statement on this connection until it is
            # recycled: drop the connection, so the sender's retry of this 503 prepares afresh.
            # Closed first, or the pool would take the session back and hand it out again.
            db.connection.close()
            db.close()
        raise
