"""The webhook receiver: the front door (SPEC §4–§6).

`POST|PUT|DELETE /webhooks/<entity>` stores the raw body in `tds_inbox_events` and its queue row
all or nothing (on PostgreSQL one statement in autocommit, elsewhere one transaction), and answers
only after the commit, so nothing acknowledged can be lost. DELETE queues a delete; one without a
body takes its object (the id) from the query parameters.

Answers, checked in this order, each with a stable `error` code in
`{"status": "error", "error": <code>, "detail": <what was wrong>}`:

- 405 `method_not_allowed`      — not POST, PUT or DELETE
- 413 `payload_too_large`       — over TDS_WEBHOOK_MAX_BYTES (Content-Length, or counted while reading)
- 401 `unauthorized`            — no configured scheme passed (nothing stored)
- 429 `throttled`               — the same, from an address that keeps failing
- 404 `unknown_entity`          — not one of the eleven slugs
- 415 `unsupported_media_type`  — not JSON, text/plain or form-urlencoded (none is tried as JSON)
- 400 `invalid_payload`         — unparseable, JSON that is not an object, or content the database
                                  refuses (kept as `rejected`)
- 409 `idempotency_conflict`    — an Idempotency-Key or webhook-id reused with another body
- 503 `database_unavailable`    — the database failed; nothing half-written, the sender may retry
- 202 `{"status": "accepted", "event_id": <id>, "duplicate": false}`
- 200 `{"status": "duplicate", "event_id": <first id>, "duplicate": true}`
"""

from __future__ import annotations

import functools
import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from django.conf import settings
from django.db import DatabaseError, DataError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sync import entities, payloads, queue, webhook_auth
from sync.models import InboxEvent, QueueItem
from tdscore.logging import logs_as

METHODS = {"POST": QueueItem.Operation.UPSERT, "PUT": QueueItem.Operation.UPSERT, "DELETE": QueueItem.Operation.DELETE}
# A missing type is tried as JSON; `application/<vendor>+json` is JSON too.
ACCEPTED_TYPES = {"", "application/json", "text/json", "text/plain", webhook_auth.FORM_TYPE}
# Headers worth keeping for an operator; never a token, a signature or a cookie.
KEPT_HEADERS = {"content-type", "user-agent", "idempotency-key", "webhook-id", "webhook-timestamp", "x-request-id"}


def error(status: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"status": "error", "error": code, "detail": detail, **extra}, status=status)


@csrf_exempt
@logs_as(entity="entity")
def receive(request: HttpRequest, entity: str) -> JsonResponse:
    if request.method not in METHODS:
        response = error(405, "method_not_allowed", f"{request.method} is not accepted; use POST, PUT or DELETE")
        response["Allow"] = ", ".join(METHODS)
        return response
    limit = settings.TDS_WEBHOOK_MAX_BYTES
    try:
        body = read_body(request, limit)
    except OSError:  # the sender hung up mid-body (UnreadablePostError): nothing to store
        return error(400, "invalid_payload", "the body could not be read to its end")
    if body is None:
        return error(413, "payload_too_large", f"the body is over the limit of {limit} bytes")
    now = timezone.now()
    source = webhook_auth.authenticate(request, body, now=now)
    if source is None:
        if webhook_auth.record_failure(request.META.get("REMOTE_ADDR", "")):
            return error(429, "throttled", "too many failed authentications from this address; wait and retry")
        return error(401, "unauthorized", "no valid token or signature")
    if entity not in entities.ENTITIES:
        return error(404, "unknown_entity", f"{entity!r} is not one of: {', '.join(entities.ENTITIES)}")
    media_type = _media_type(request)
    if media_type not in ACCEPTED_TYPES and not media_type.endswith("+json"):
        return error(415, "unsupported_media_type", f"{request.content_type} is not JSON, text/plain or a form")
    delivery = Delivery(request, body, entity, source, METHODS[request.method], now)
    try:
        return delivery.store()
    except DatabaseError as exc:
        # The transaction rolled back whole: the sender gets a retryable answer, never a 500.
        return error(503, "database_unavailable", f"the database did not answer ({type(exc).__name__}); retry")


def read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None when it is over `limit`. Never reads more than `limit + 1` bytes.

    A declared Content-Length is judged before reading; a chunked body (no length, the server
    de-chunks it) is read from the server's stream and judged by what arrived.
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.strip().isdigit():
        if int(declared) > limit:
            return None
        data = request.read(limit + 1)
    elif request.META.get("wsgi.input_terminated"):
        data = request.META["wsgi.input"].read(limit + 1)
    else:
        data = b""  # no length and a server that cannot say where the body ends
    return None if len(data) > limit else data


def _media_type(request: HttpRequest) -> str:
    return (request.content_type or "").strip().lower()


class Unparseable(ValueError):
    pass


def parse(body: bytes, media_type: str) -> dict[str, Any]:
    """The body as an object (SPEC §4): JSON first whatever the label says (Zoho labels JSON as a
    form), then a form whose one field holds a JSON object (`JSONString={…}`), then flat form pairs.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unparseable("the body is not UTF-8") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise Unparseable("the JSON is nested too deeply") from None
    except ValueError:
        value = None
    else:
        if isinstance(value, dict):
            return value
        raise Unparseable(f"the JSON is a {type(value).__name__}, not an object")
    if media_type == webhook_auth.FORM_TYPE:
        pairs = parse_qsl(text, keep_blank_values=True)
        if len(pairs) == 1:
            try:
                inner = json.loads(pairs[0][1])
            except ValueError:
                inner = None
            if isinstance(inner, dict):
                return inner
        if pairs:
            return dict(pairs)
    raise Unparseable("the body is neither a JSON object nor a form")


def _kept_headers(request: HttpRequest) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in request.headers.items()
        if name.lower() in KEPT_HEADERS
        or (name.lower().startswith("x-zoho-") and "signature" not in name.lower() and "token" not in name.lower())
    }


@dataclass
class Delivery:
    request: HttpRequest
    body: bytes
    slug: str
    source: str
    operation: str
    now: datetime

    def store(self) -> JsonResponse:
        try:
            obj = self._query_object() if self._is_bodiless_delete() else parse(self.body, _media_type(self.request))
        except Unparseable as exc:
            return self._store_rejected(str(exc))
        located = entities.locate(self.slug, obj)
        digest = payloads.content_hash(located.obj)
        event = self._event(
            entity=located.entity.slug,
            object_id=located.object_id or "",
            key=self._explicit_key() or self._derived_key(located, digest),
            content_hash=digest,
        )
        try:
            event_id, outcome = self._insert(event, located, digest)
        except DataError as exc:
            # The database refuses this content (a \u0000 in jsonb, an id too long for its column):
            # retrying cannot help, so keep the body as rejected rather than answer 503 for ever.
            return self._store_rejected(f"the database refused the payload: {exc}".strip())
        return self._answer(event_id, outcome)

    def _is_bodiless_delete(self) -> bool:
        return self.operation == QueueItem.Operation.DELETE and not self.body.strip()

    def _query_object(self) -> dict[str, str]:
        # A delete rule may name its record only in the URL (`?item_id=${item.item_id}`): a delete
        # must not be lost for want of a body. Without the id it is dead-lettered, still visible.
        return {name: value for name, value in self.request.GET.items() if name != "token"}

    def _explicit_key(self) -> str:
        headers = self.request.headers
        return (headers.get("Idempotency-Key") or headers.get("webhook-id") or "").strip()[:255]

    def _derived_key(self, located: entities.Located, digest: str) -> str:
        key = f"{located.entity.slug}:{located.object_id or ''}:{digest}"
        # A delete often carries the record as last sent: without the suffix it would count as a
        # repeat of that upsert and the delete would be lost.
        return f"{key}:delete" if self.operation == QueueItem.Operation.DELETE else key

    def _event(self, *, entity: str, object_id: str, key: str, content_hash: str, **fields: Any) -> InboxEvent:
        return InboxEvent(
            entity=entity,
            object_id=object_id[:100],
            source=self.source,
            method=self.request.method,
            content_type=(self.request.META.get("CONTENT_TYPE") or "")[:200],
            headers=_kept_headers(self.request),
            raw_body=self.body,
            idempotency_key=key,
            content_hash=content_hash,
            remote_addr=self.request.META.get("REMOTE_ADDR") or None,
            received_at=self.now,
            **fields,
        )

    def _insert(self, event: InboxEvent, located: entities.Located, digest: str) -> tuple[int, str]:
        """Store the inbox row and, when it is new, its queue row (or its dead letter): all or nothing."""
        if located.object_id is None:
            return self._insert_dead_lettered(event, located)
        fields = {
            "entity": located.entity.slug,
            "object_id": located.object_id,
            "payload": located.obj,
            "content_hash": digest,
            "version": payloads.version_of(located.obj),
            "source": QueueItem.Source.WEBHOOK,
            "operation": self.operation,
            "inbox_event": event,
            "now": self.now,
        }
        if connection.vendor == "postgresql":
            # One statement, committed by itself in autocommit: the inbox row, its queue row and the
            # supersede in one round trip instead of five. A caller's open transaction (the test
            # suite, ATOMIC_REQUESTS) gets a savepoint, so a refused statement does not poison it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                return insert_or_return(event, now=self.now, queue_row=queue.pending_row(**fields))
        with transaction.atomic():
            event_id, outcome = insert_or_return(event, now=self.now)
            if outcome == INSERTED:
                queue.enqueue(**fields)
        return event_id, outcome

    def _insert_dead_lettered(self, event: InboxEvent, located: entities.Located) -> tuple[int, str]:
        # Rare (a shape failure), so a plain transaction: the inbox row is kept as rejected and a
        # dead letter points at it.
        with transaction.atomic():
            event_id, outcome = insert_or_return(event, now=self.now)
            if outcome == INSERTED:
                queue.dead_letter_at_ingest(
                    inbox_event=event,
                    entity=located.entity.slug,
                    payload=located.obj,
                    error=f"{located.entity.slug}: the object has no {located.entity.id_field}",
                    now=self.now,
                )
        return event_id, outcome

    def _store_rejected(self, reason: str) -> JsonResponse:
        digest = hashlib.sha256(self.body).hexdigest()
        event = self._event(
            entity=self.slug,
            object_id="",
            key=f"raw:{digest}",
            content_hash=digest,
            status=InboxEvent.Status.REJECTED,
            error=reason,
        )
        with transaction.atomic():
            event_id, _ = insert_or_return(event, now=self.now)
        return error(400, "invalid_payload", reason, event_id=event_id)

    def _answer(self, event_id: int, outcome: str) -> JsonResponse:
        if outcome == CONFLICT:
            return error(
                409,
                "idempotency_conflict",
                "this Idempotency-Key or webhook-id was already used with a different body",
                event_id=event_id,
            )
        if outcome == DUPLICATE:
            return JsonResponse({"status": "duplicate", "event_id": event_id, "duplicate": True}, status=200)
        return JsonResponse({"status": "accepted", "event_id": event_id, "duplicate": False}, status=202)


INSERTED, DUPLICATE, CONFLICT = "inserted", "duplicate", "conflict"
_INSERT_FIELDS = [f for f in InboxEvent._meta.concrete_fields if not f.primary_key]


def insert_or_return(event: InboxEvent, *, now: datetime, queue_row: QueueItem | None = None) -> tuple[int, str]:
    """Insert the inbox row, or count a repeat on the row that holds its key (SPEC §6).

    Never check-then-insert: `ON CONFLICT DO NOTHING` lets the database decide between two
    concurrent identical deliveries (the second waits for the first to commit, then conflicts).
    A repeat with another content hash is a conflict and changes nothing. Sets `event.pk`.
    With `queue_row` (PostgreSQL only), a new inbox row's queue row goes in with the same
    statement (`queue.enqueue_with_inbox_row`); a repeat inserts none.
    """
    # The connection itself, not the proxy `connection`: every attribute read through the proxy
    # is a thread-local lookup, and each field's preparation reads several.
    db = transaction.get_connection()
    table = db.ops.quote_name(InboxEvent._meta.db_table)
    sql = _inbox_insert_sql(db.vendor)
    values = [f.get_db_prep_save(getattr(event, f.attname), db) for f in _INSERT_FIELDS]
    if queue_row is None:
        with db.cursor() as cursor:
            cursor.execute(sql, values)
            row = cursor.fetchone()
    else:
        row = _execute_prepared(db, *queue.enqueue_with_inbox_row(sql, values, queue_row, now=now))
    if row:
        event.pk = row[0]
        return row[0], INSERTED
    with db.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET duplicate_count = duplicate_count + 1, last_duplicate_at = %s"
            " WHERE idempotency_key = %s AND content_hash = %s RETURNING id",
            [db.ops.adapt_datetimefield_value(now), event.idempotency_key, event.content_hash],
        )
        row = cursor.fetchone()
        if row:
            return row[0], DUPLICATE
        cursor.execute(f"SELECT id FROM {table} WHERE idempotency_key = %s", [event.idempotency_key])
        row = cursor.fetchone()
    if row is None:
        # The holder of the key was deleted (retention) between our statements: a fresh delivery.
        return insert_or_return(event, now=now, queue_row=queue_row)
    return row[0], CONFLICT


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
    """Run `sql` (enqueue_with_inbox_row()'s one statement) as a prepared statement; its first row.

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


@functools.cache
def _inbox_insert_sql(vendor: str) -> str:
    """insert_or_return()'s INSERT, built once per database kind: quoting it was a cost per webhook."""
    quote = transaction.get_connection().ops.quote_name
    columns = ", ".join(quote(f.column) for f in _INSERT_FIELDS)
    placeholders = ", ".join(["%s"] * len(_INSERT_FIELDS))
    return (
        f"INSERT INTO {quote(InboxEvent._meta.db_table)} ({columns}) VALUES ({placeholders})"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
    )
