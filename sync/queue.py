"""The state machine of a queue row, in one place.

pending ─claim─► processing ─► completed | skipped | retry | dead_letter
retry ─(next_attempt_at)─► claim again;  dead_letter ─replay─► pending
processing ─(lease expired)─► pending, or dead_letter `lease_expired` past `lease_expiry_limit`
processing ─(released by a stopping worker)─► pending (retry within a failure episode)
Waiting rows of an object are skipped as `superseded` when a strictly newer version arrives.

Every transition out of `processing` is a conditional update on the batch's lease token, so a
worker whose lease expired (and whose rows another worker took) changes nothing. A row that cannot
be claimed or read is dead-lettered alone (`validation`); the statements written by hand are in
sync.queue_sql.
"""

from __future__ import annotations

import functools
import logging
import random
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import orjson
from django.db import DEFAULT_DB_ALIAS, DataError, OperationalError, connection, connections, transaction
from django.db.models import Case, Count, F, JSONField, QuerySet, Value, When
from django.utils import timezone

from sync import payloads, queue_sql, redaction, wakeup
from sync.config_keys import (
    BATCH_SIZE,
    LEASE_EXPIRY_LIMIT,
    LOCK_TIMEOUT_SECONDS,
    MAX_RETRY_ATTEMPTS,
    PAUSED_ENTITIES,
    RETRY_BACKOFF_BASE_MS,
    RETRY_BACKOFF_MAX_MS,
)
from sync.errors import ApplyError
from sync.models import DeadLetter, InboxEvent, QueueItem, SyncLog
from tdscore import actions, config
from tdscore.actions import Actor
from tdscore.enums import Action
from tdscore.models import Configuration

logger = logging.getLogger(__name__)


def pending_row(
    *,
    entity: str,
    object_id: str,
    payload: dict[str, Any],
    content_hash: str,
    version: datetime | None,
    source: str,
    now: datetime,
    operation: str = QueueItem.Operation.UPSERT,
    is_summary: bool = False,
    inbox_event: InboxEvent | None = None,
    sync_run=None,
    priority: int = 0,
    requested_by: str = "",
) -> QueueItem:
    """The row enqueue() inserts, unsaved: pending and due now.

    A delete without a version takes its receive time, so it orders after everything
    received before it.
    """
    if operation == QueueItem.Operation.DELETE and version is None:
        version = now
    # A pulled or repaired object about an erased contact loses its personal data before it is kept.
    payload, _ = redaction.on_arrival(payload)
    return QueueItem(
        entity=entity,
        object_id=object_id,
        payload=payload,
        content_hash=content_hash,
        version=version,
        source=source,
        operation=operation,
        is_summary=is_summary,
        inbox_event=inbox_event,
        sync_run=sync_run,
        priority=priority,
        requested_by=requested_by,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def enqueue(*, now: datetime, **fields: Any) -> QueueItem:
    """Insert a pending row (`pending_row(**fields)`) and supersede older waiting versions of the
    same object.

    Call inside the transaction that stores whatever produced the change (the inbox row, a pull
    page), so the change and its queue row commit together. A webhook on PostgreSQL does all of it
    in the statement that stores its inbox row (sync.inbox).
    """
    item = pending_row(now=now, **fields)
    item.save(force_insert=True)
    if item.version is not None:
        supersede_older(item, now=now)
    wakeup.after_commit()
    return item


# Every column but the id, as save() and COPY insert them.
_ROW_FIELDS = [f for f in QueueItem._meta.concrete_fields if not f.primary_key]


def enqueue_many(items: list[QueueItem], *, now: datetime) -> int:
    """enqueue() for a page of rows (a pull's 200) in a few statements instead of three per row.

    The rows go in with one statement (COPY on PostgreSQL, a bulk INSERT elsewhere); then only
    objects that now have more than one waiting row go through queue.supersede_older(), the one
    place that decides superseding. Deletes must come through enqueue(), which versions them.
    A row without a content hash gets it here, from the same canonical JSON that COPY stores, so
    a pulled row is encoded once.
    """
    texts = [payloads.canonical_json(item.payload) for item in items]
    for item, text in zip(items, texts, strict=True):
        item.next_attempt_at = item.created_at = item.updated_at = now
        item.content_hash = item.content_hash or payloads.content_hash(item.payload, canonical=text)
    if connection.vendor == "postgresql":
        _copy_rows(items, texts)
    else:
        QueueItem.objects.bulk_create(items)
    keys = {(item.entity, item.object_id) for item in items if item.version is not None}
    for entity, object_id in _crowded(keys):
        for item in QueueItem.objects.filter(
            entity=entity, object_id=object_id, created_at=now, source=items[0].source
        ):
            supersede_older(item, now=now)
    wakeup.after_commit()
    return len(items)


def _crowded(keys: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (entity, object_id) of `keys` that have more than one waiting row (queue_sql.crowded)."""
    if not keys:
        return []
    with connection.cursor() as cursor:
        cursor.execute(queue_sql.crowded(len(keys)), [value for key in keys for value in key] + list(QueueItem.WAITING))
        return cursor.fetchall()


def _copy_rows(items: list[QueueItem], payload_texts: list[str]) -> None:
    """COPY the rows into the queue: ~4x the rate of Django's bulk INSERT for these JSON-heavy rows
    on PostgreSQL (psycopg quotes the JSON arrays of Django's UNNEST form in pure Python).

    Values go to psycopg as they are (strings, numbers, aware datetimes, None): every queue column
    is one psycopg writes itself, and Django's per-field preparation cost more than the COPY. The
    payload goes as its JSON text, which PostgreSQL parses into jsonb.
    """
    attnames = [f.attname for f in _ROW_FIELDS]  # the columns of queue_sql.COPY_ROWS, in its order
    payload_at = attnames.index("payload")
    with connection.cursor() as cursor, cursor.cursor.copy(queue_sql.COPY_ROWS) as copy:
        for item, text in zip(items, payload_texts, strict=True):
            row = [getattr(item, name) for name in attnames]
            row[payload_at] = text
            copy.write_row(row)


def supersede_older(item: QueueItem, *, now: datetime) -> int:
    """Skip waiting rows of the same object with a strictly older version; their inbox rows are
    then `processed`.

    One UPDATE … RETURNING (PostgreSQL, SQLite ≥ 3.35) rather than the ORM's SELECT then UPDATE:
    it runs on every enqueue, and usually finds nothing, so it is one round trip.
    """
    with connection.cursor() as cursor:
        cursor.execute(*_superseding(item, now=now))
        superseded = cursor.fetchall()
        _mark_processed(cursor, superseded)
    return len(superseded)


def _superseding(item: QueueItem, *, now: datetime, only_if: str = "") -> tuple[str, list[Any]]:
    """The UPDATE … RETURNING inbox_event_id that skips the waiting rows of `item`'s object with a
    strictly older version (`item` itself never is), and its parameters; `only_if` adds a condition.

    A summary (list row) only supersedes summaries: an older detail still carries lines that a
    summary does not, so it is applied first and the summary then updates the header.
    """
    ops = connection.ops
    sql = queue_sql.supersede(summaries_only=item.is_summary, only_if=only_if)
    params = [
        QueueItem.Status.SKIPPED,
        QueueItem.SkipReason.SUPERSEDED,
        ops.adapt_datetimefield_value(now),
        ops.adapt_datetimefield_value(now),
        item.entity,
        item.object_id,
        *QueueItem.WAITING,
        ops.adapt_datetimefield_value(item.version),
    ]
    return sql, params


def _mark_processed(cursor, finished: list[tuple[int | None]]) -> None:
    """Mark `processed` the inbox rows of queue rows just finished (rows of their inbox_event_id)."""
    inbox_ids = [inbox_id for (inbox_id,) in finished if inbox_id is not None]
    if inbox_ids:
        sql = queue_sql.mark_inbox_processed(", ".join(["%s"] * len(inbox_ids)))
        cursor.execute(sql, [InboxEvent.Status.PROCESSED, *inbox_ids])


def dead_letter_at_ingest(
    *, inbox_event: InboxEvent, entity: str, payload: Any, error: str, now: datetime
) -> DeadLetter:
    """A shape failure found before any queue row exists (e.g. an object without its id).

    The inbox row is kept (`rejected`) and linked, so an operator sees the body that came in.
    """
    inbox_event.status = InboxEvent.Status.REJECTED
    inbox_event.error = error
    inbox_event.save(update_fields=["status", "error"])
    return DeadLetter.objects.create(
        inbox_event=inbox_event,
        entity=entity,
        payload=payload,
        reason=DeadLetter.Reason.VALIDATION,
        error=error,
        error_class="ValidationFailed",
        attempts=0,
        first_failed_at=now,
        last_failed_at=now,
    )


# --- Claiming and leases -----------------------------------------------------------------------


@dataclass
class Batch:
    """Rows of one entity claimed together under one lease token."""

    entity: str
    token: uuid.UUID
    worker_id: str
    items: list[QueueItem]


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=config.get(LOCK_TIMEOUT_SECONDS))


def claim_batch(*, worker_id: str, now: datetime, due_by: datetime | None = None) -> Batch | None:
    """Lease up to `batch_size` due rows of one entity (the entity of the first due row).

    Paused entities are never claimed. `due_by` (default `now`) lets `process_queue --once` take
    only rows that were due when it started, so a row it retries is left for later, not spun on.
    Attempts are counted here, at claim. None means nothing is due. A row that cannot be claimed
    or read is dead-lettered on its own, and the claim goes on with the others.
    """
    paused = config.get(PAUSED_ENTITIES)
    waiting = QueueItem.objects.due(due_by or now).exclude(entity__in=paused).in_claim_order()
    for _ in range(CLAIM_TRIES):
        entity = waiting.values_list("entity", flat=True).first()
        if entity is None:
            return None
        token = uuid.uuid4()
        items = _lease(waiting.filter(entity=entity), worker_id=worker_id, token=token, now=now)
        if items:
            return Batch(entity=entity, token=token, worker_id=worker_id, items=items)
        # Other workers' claims in flight held every row we picked (or every row we picked was
        # dead-lettered): look again rather than report an empty queue, which would end a `--once`
        # run early.
    return None


# A claim that comes back empty while rows are due lost a race with concurrent claims.
CLAIM_TRIES = 5


def _lease(rows: QuerySet, *, worker_id: str, token: uuid.UUID, now: datetime) -> list[QueueItem]:
    """Lease the first `batch_size` of `rows` and return them, in claim order, in one statement.

    If the statement fails, or a row it returns cannot be loaded, the lease is rolled back and the
    rows are leased one at a time, so only the row at fault is dead-lettered (_lease_each).
    """
    picked = rows.values("pk")[: config.get(BATCH_SIZE)]
    inner, inner_params = picked.query.get_compiler(connection=connection).as_sql()
    if connection.vendor == "postgresql":
        # Concurrent workers each get different rows instead of queueing on the same ones.
        # SQLite serialises writers, so the plain conditional update is enough there.
        inner += " FOR UPDATE SKIP LOCKED"
    try:
        items = _leased_rows(inner, inner_params, worker_id=worker_id, token=token, now=now)
    except OperationalError:
        raise  # the database, not a row: the drain tries again after a poll
    except Exception:
        items = _lease_each(list(picked.values_list("pk", flat=True)), worker_id=worker_id, token=token, now=now)
    items.sort(key=lambda item: (-item.priority, item.next_attempt_at or _EARLIEST, item.pk))
    return _without_unreadable_versions(items, token, now=now)


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _leased_rows(
    picked: str | None, params: list[Any], *, worker_id: str, token: uuid.UUID, now: datetime
) -> list[QueueItem]:
    """Run queue_sql.lease over `picked` and load the rows it returns, all or nothing.

    The transaction is what makes "nothing": a row that fails to load after the UPDATE ran would
    otherwise leave the whole batch leased to a worker that never got it.
    """
    ops = connection.ops
    statement, tested = queue_sql.lease(picked)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            statement,
            [
                QueueItem.Status.PROCESSING,
                worker_id,
                ops.adapt_datetimefield_value(lease_until(now)),
                QueueItem._meta.get_field("lease_token").get_db_prep_value(token, connection),
                ops.adapt_datetimefield_value(now),
                *params,
                *(QueueItem.WAITING if tested else ()),
            ],
        )
        return _loaded(cursor.fetchall())


def _loaded(rows: list[tuple]) -> list[QueueItem]:
    """The QueueItems of the rows the lease returned (their columns in model order, then version_stored).

    Built from the cursor's rows as the ORM would (the backend's and each field's converters), minus
    raw()'s per-row bookkeeping, and with the payload decoded by orjson: the claim loads every row
    of every batch, and raw() with json.loads was a quarter of a drainer's CPU. The connection is
    looked up once (each `connection.…` goes through a thread-local proxy).
    """
    db = connections[DEFAULT_DB_ALIAS]
    columns = _converters(db.vendor)
    items = []
    for row in rows:
        values = list(row[:-1])
        for i, field, converters in columns:
            for convert in converters:
                values[i] = convert(values[i], field.cached_col, db)
        item = QueueItem.from_db(db.alias, None, values)
        item.version_stored = bool(row[-1])
        items.append(item)
    return items


@functools.cache
def _converters(vendor: str) -> list[tuple[int, Any, list[Callable]]]:
    """(position, field, converters) of each QueueItem column that has any, as the ORM's compiler
    collects them; the JSON columns read by _json instead of JSONField.from_db_value."""
    out = []
    for i, field in enumerate(QueueItem._meta.concrete_fields):
        own = [_json] if isinstance(field, JSONField) else field.get_db_converters(connection)
        converters = connection.ops.get_db_converters(field.cached_col) + own
        if converters:
            out.append((i, field, converters))
    return out


def _json(value: Any, expression: Any, connection: Any) -> Any:
    """JSONField.from_db_value, by orjson (several times json's speed) where orjson takes the text."""
    if not isinstance(value, str | bytes):
        return value  # None, or a backend that decoded it already
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits, which orjson refuses
        return expression.output_field.from_db_value(value, expression, connection)


def _lease_each(ids: list[int], *, worker_id: str, token: uuid.UUID, now: datetime) -> list[QueueItem]:
    """Lease `ids` one statement each; a row whose claim or load fails is dead-lettered, alone."""
    items = []
    for pk in ids:
        try:
            items += _leased_rows(None, [pk], worker_id=worker_id, token=token, now=now)
        except OperationalError:
            raise
        except Exception as exc:
            _dead_letter_unreadable(pk, exc, now=now)
    return items


def _without_unreadable_versions(items: list[QueueItem], token: uuid.UUID, *, now: datetime) -> list[QueueItem]:
    """Dead-letter the rows whose stored version Python cannot hold (read as None: sync.timestamps).

    Applied, such a row would pass for one without a version; it is `validation`.
    """
    kept = []
    for item in items:
        if item.version is None and item.version_stored:
            error = "version is outside the dates Python can hold (years 1 to 9999, UTC)"
            _dead_letter(item, token, DeadLetter.Reason.VALIDATION, error, "ValidationFailed", "", now)
        else:
            kept.append(item)
    return kept


def readable_row(pk: int) -> tuple[QueueItem, list[str]]:
    """The queue row `pk` with every column Python can load, and the names of those it cannot.

    For rows that fail to load whole (a payload or timestamp out of Python's range): a dead letter
    copies what can be copied. One query, or one per column when the whole row fails.
    """
    rows = QueueItem.objects.filter(pk=pk)
    names = [f.attname for f in QueueItem._meta.concrete_fields]
    try:
        with transaction.atomic():
            return QueueItem(**rows.values(*names).get()), []
    except OperationalError:
        raise
    except Exception:
        pass
    values, unreadable = {}, []
    for name in names:
        try:
            with transaction.atomic():
                values[name] = rows.values_list(name, flat=True).get()
        except OperationalError:
            raise
        except Exception:
            unreadable.append(name)
    return QueueItem(**values), unreadable


def _dead_letter_unreadable(pk: int, exc: Exception, *, now: datetime) -> None:
    """Dead-letter a waiting row that cannot be claimed or loaded, from what of it can be read.

    The error names the columns, not their values: the payload stays in the inbox row.
    """
    item, unreadable = readable_row(pk)
    where = f"its {', '.join(unreadable)} cannot be read" if unreadable else "it cannot be claimed"
    error = f"{where} ({type(exc).__name__})"
    trace = "".join(traceback.format_exception(exc))
    with transaction.atomic():
        if not _finish_as_dead_letter(QueueItem.objects.filter(pk=pk, status__in=QueueItem.WAITING), error, now):
            return  # another worker took it meanwhile
        _record_dead_letter(item, DeadLetter.Reason.VALIDATION, error, "ValidationFailed", trace, now)
    logger.error("queue row #%s dead-lettered: %s", pk, error)


def renew(batch: Batch, *, now: datetime) -> int:
    """Extend the lease of the batch's unfinished rows; 0 means another worker owns them now."""
    return QueueItem.objects.leased(batch.token).update(locked_until=lease_until(now), updated_at=now)


def release(batch: Batch, *, now: datetime) -> int:
    """Give the batch's unfinished rows back, due at once for any worker (a stopping drainer).

    The try is refunded: it was never made. A row in a failure episode goes back to `retry`.
    """
    wakeup.after_commit()  # another drainer may be idle
    return QueueItem.objects.leased(batch.token).update(
        status=Case(
            When(failing_since__isnull=True, then=Value(QueueItem.Status.PENDING)),
            default=Value(QueueItem.Status.RETRY),
        ),
        attempts=F("attempts") - 1,
        locked_until=None,
        lease_token=None,
        updated_at=now,
    )


def recover_expired_leases(*, now: datetime) -> int:
    """Put rows whose worker vanished (lease past `locked_until`) back in line.

    The try is refunded (its outcome is unknown) and counted in `lease_expiries` instead; a row whose
    lease keeps expiring (it kills its worker each time) is dead-lettered as `lease_expired`. Only
    the columns this needs are read, so no row's content can stop recovery.
    """
    limit = config.get(LEASE_EXPIRY_LIMIT)
    expired = list(
        QueueItem.objects.expired_leases(now)
        .order_by("pk")
        .values_list("pk", "lease_expiries", "locked_by", "lease_token")[:500]
    )
    for pk, expiries, locked_by, token in expired:
        if expiries + 1 >= limit:
            error = f"lease expired {expiries + 1} times (worker {locked_by or '?'} vanished)"
            item, _ = readable_row(pk)
            _dead_letter(item, token, DeadLetter.Reason.LEASE_EXPIRED, error, "LeaseExpired", "", now)
    requeued = QueueItem.objects.filter(
        pk__in=[pk for pk, *_ in expired], status=QueueItem.Status.PROCESSING, locked_until__lt=now
    ).update(
        status=QueueItem.Status.PENDING,
        attempts=F("attempts") - 1,
        lease_expiries=F("lease_expiries") + 1,
        locked_until=None,
        lease_token=None,
        updated_at=now,
    )
    return requeued


# --- Finishing -----------------------------------------------------------------------------------


APPLIED = "applied"  # sync.handlers.ApplyOutcome.APPLIED; every other outcome is a skip reason


class LeaseLost(Exception):
    """The batch's lease expired and another worker took (some of) its rows: undo our work."""


def finish(batch: Batch, items: list[QueueItem], outcomes: dict[int, Any], *, now: datetime) -> None:
    """Complete or skip `items` as the handlers decided. Call inside the apply transaction.

    `outcomes` maps a queue row id to the handlers' Outcome: `applied` completes the row, any other
    value (stale, unchanged, summary) skips it with that value as skip_reason. Raises LeaseLost if a
    row is no longer ours, so the caller's transaction rolls back the ERP writes with it.
    """
    if not items:
        return
    ops = connection.ops
    ids = [item.pk for item in items]
    reasons = [str(outcomes[pk]) for pk in ids]  # Outcome is a TextChoices: its str is its value
    reasons = ["" if reason == APPLIED else reason for reason in reasons]
    if connection.vendor == "postgresql":
        params: list[Any] = [ids, reasons]
    else:
        params = [value for pair in zip(ids, reasons, strict=True) for value in pair]
    params += [
        QueueItem.Status.COMPLETED,
        QueueItem.Status.SKIPPED,
        ops.adapt_datetimefield_value(now),
        ops.adapt_datetimefield_value(now),
        QueueItem._meta.get_field("lease_token").get_db_prep_value(batch.token, connection),
        QueueItem.Status.PROCESSING,
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(queue_sql.finish(len(items)), [*params, InboxEvent.Status.PROCESSED])
            (done,) = cursor.fetchone()
        else:
            cursor.execute(queue_sql.finish(len(items)), params)
            finished = cursor.fetchall()
            done = len(finished)
            _mark_processed(cursor, finished)
    if done != len(items):
        # The inbox rows marked with them are rolled back with the caller's transaction.
        raise LeaseLost(f"{len(items) - done} of {len(items)} rows of lease {batch.token} belong to another worker")


# --- Failures ----------------------------------------------------------------------------------


class FailureKind(Enum):
    PERMANENT = "permanent"  # dead-letter at once
    TRANSIENT = "transient"  # retry with backoff, then retries_exhausted
    INFRASTRUCTURE = "infrastructure"  # retry until it clears, the attempt refunded


def classify(exc: BaseException) -> tuple[FailureKind, str]:
    """The kind of a failure and the dead-letter reason it would carry."""
    if isinstance(exc, ApplyError):
        return FailureKind.PERMANENT, exc.reason
    if isinstance(exc, OperationalError):
        # Deadlock, serialization failure, lock timeout, lost connection, SQLite busy: the database,
        # not the row. (psycopg's DeadlockDetected and SerializationFailure arrive wrapped as this.)
        return FailureKind.INFRASTRUCTURE, ""
    if isinstance(exc, DataError):
        # A value the column cannot hold (an over-long string, a number out of range): the same payload
        # fails the same way every time, so retrying only delays the operator who must look at it.
        return FailureKind.PERMANENT, DeadLetter.Reason.VALIDATION
    # Anything else (an IntegrityError from two inserts racing on a unique key, a handler bug fixed
    # by a deploy) may clear, so it is retried and dead-lettered only once attempts run out.
    return FailureKind.TRANSIENT, DeadLetter.Reason.RETRIES_EXHAUSTED


def backoff(attempt: int, *, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter: uniform(0, min(max, base * 2**(attempt-1)))."""
    ceiling = min(config.get(RETRY_BACKOFF_MAX_MS), config.get(RETRY_BACKOFF_BASE_MS) * 2 ** max(attempt - 1, 0))
    return timedelta(milliseconds=rng.uniform(0, ceiling))


def record_failure(
    batch: Batch, item: QueueItem, exc: BaseException, *, now: datetime, rng: random.Random
) -> QueueItem.Status:
    """Move a failed row on: retry (backoff), retry with the attempt refunded, or dead-letter.

    Call outside the rolled-back apply transaction, so the error and traceback are kept.
    """
    kind, reason = classify(exc)
    error = f"{type(exc).__name__}: {exc}"
    trace = "".join(traceback.format_exception(exc))
    if kind is FailureKind.TRANSIENT and item.attempts >= config.get(MAX_RETRY_ATTEMPTS):
        kind = FailureKind.PERMANENT
    if kind is FailureKind.PERMANENT:
        _dead_letter(item, batch.token, reason, error, type(exc).__name__, trace, now)
        return QueueItem.Status.DEAD_LETTER
    refund = kind is FailureKind.INFRASTRUCTURE
    delay = backoff(1 if refund else item.attempts, rng=rng)
    _retry(item, batch.token, error, trace, now + delay, refund, now)
    return QueueItem.Status.RETRY


def _retry(item: QueueItem, token, error: str, trace: str, when: datetime, refund: bool, now: datetime) -> bool:
    with transaction.atomic():
        moved = (
            QueueItem.objects.leased(token)
            .filter(pk=item.pk)
            .update(
                status=QueueItem.Status.RETRY,
                attempts=F("attempts") - 1 if refund else F("attempts"),
                next_attempt_at=when,
                last_error=error,
                failing_since=item.failing_since or now,
                locked_until=None,
                lease_token=None,
                updated_at=now,
            )
        )
        if moved:
            kind = "waits for infrastructure" if refund else f"retries (attempt {item.attempts})"
            _log(item, SyncLog.Level.WARNING, f"{kind} at {when:%H:%M:%S.%f}: {error}", trace, now)
    return bool(moved)


def _dead_letter(
    item: QueueItem, token, reason: str, error: str, error_class: str, trace: str, now: datetime
) -> DeadLetter | None:
    with transaction.atomic():
        if not _finish_as_dead_letter(QueueItem.objects.leased(token).filter(pk=item.pk), error, now):
            return None  # no longer ours: the new owner decides
        return _record_dead_letter(item, reason, error, error_class, trace, now)


def _finish_as_dead_letter(rows: QuerySet, error: str, now: datetime) -> int:
    return rows.update(
        status=QueueItem.Status.DEAD_LETTER,
        last_error=error,
        finished_at=now,
        locked_until=None,
        lease_token=None,
        updated_at=now,
    )


def _record_dead_letter(
    item: QueueItem, reason: str, error: str, error_class: str, trace: str, now: datetime
) -> DeadLetter:
    if item.inbox_event_id:
        InboxEvent.objects.filter(pk=item.inbox_event_id).update(status=InboxEvent.Status.REJECTED, error=error)
    _log(item, SyncLog.Level.ERROR, f"dead-lettered ({reason}): {error}", trace, now)
    return DeadLetter.objects.create(
        queue_item_id=item.pk,
        inbox_event_id=item.inbox_event_id,
        entity=item.entity,
        object_id=item.object_id,
        payload=item.payload,
        reason=reason,
        error=error,
        error_class=error_class,
        traceback=trace,
        attempts=item.attempts,
        first_failed_at=item.failing_since or now,
        last_failed_at=now,
    )


def _log(item: QueueItem, level: str, message: str, trace: str, now: datetime) -> None:
    ids = {"entity": item.entity, "object_id": item.object_id, "queue_row": item.pk, "event_id": item.inbox_event_id}
    logger.log(logging.getLevelName(level.upper()), message, extra=ids)
    SyncLog.objects.create(
        queue_item_id=item.pk,
        level=level,
        message=f"{item.entity} {item.object_id}: {message}",
        context={"attempts": item.attempts, "traceback": trace[-4000:]} if trace else {"attempts": item.attempts},
        at=now,
    )


# --- Dead letters: replay, discard, fix ----------------------------------------------------------


class DeadLetterError(ValueError):
    """The dead letter cannot take that action (already resolved, or no queue row to replay)."""


class AlreadyResolved(DeadLetterError):
    pass


class NotReplayable(DeadLetterError):
    pass


def replay(dead_letter: DeadLetter, *, actor: Actor, now: datetime | None = None, requeue: bool = False) -> QueueItem:
    """Send the same queue row back to `pending` with its attempts reset; resolve the dead letter.

    The row keeps its source (webhook, pull…): where a change came from stays true, and the replay
    itself is recorded on the dead letter (resolution `replayed`, resolved_by, resolved_at), on the
    queue row (`requested_by`) and in the action log, as a replay or, from the queue's own list, a
    requeue (`requeue`). A new failure opens a new dead letter. Raises DeadLetterError
    (AlreadyResolved, NotReplayable) with a message fit for an operator; the dashboard answers it
    with 409.
    """
    now = now or timezone.now()
    with transaction.atomic():
        dead_letter, item = _replayable(dead_letter, lock=True)
        QueueItem.objects.filter(pk=item.pk).update(
            status=QueueItem.Status.PENDING,
            skip_reason="",
            attempts=0,
            lease_expiries=0,
            failing_since=None,
            next_attempt_at=now,
            finished_at=None,
            locked_by="",
            locked_until=None,
            lease_token=None,
            requested_by=actor.name,
            updated_at=now,
        )
        if item.inbox_event_id:
            InboxEvent.objects.filter(pk=item.inbox_event_id).update(status=InboxEvent.Status.QUEUED)
        _resolve(dead_letter, DeadLetter.Resolution.REPLAYED, actor, now)
        if requeue:
            _record(
                actor, Action.REQUEUE, item, now, before=QueueItem.Status.DEAD_LETTER, after=QueueItem.Status.PENDING
            )
        else:
            _record(actor, Action.REPLAY, dead_letter, now, before=OPEN, after=DeadLetter.Resolution.REPLAYED)
        _log(item, SyncLog.Level.INFO, f"replayed from dead letter #{dead_letter.pk} by {actor}", "", now)
        wakeup.after_commit()
    item.refresh_from_db()
    return item


def discard(dead_letter: DeadLetter, *, actor: Actor, now: datetime | None = None) -> None:
    """Resolve without applying: the change is dropped on purpose; the queue row stays dead_letter."""
    _resolve_by_operator(dead_letter, DeadLetter.Resolution.DISCARDED, Action.DISCARD, actor, now)


def mark_fixed(dead_letter: DeadLetter, *, actor: Actor, now: datetime | None = None) -> None:
    """Resolve because the change reached the ERP another way (a later version, a repair)."""
    _resolve_by_operator(dead_letter, DeadLetter.Resolution.FIXED, Action.MARK_FIXED, actor, now)


def _resolve_by_operator(
    dead_letter: DeadLetter, resolution: str, action: Action, actor: Actor, now: datetime | None
) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        dead_letter = _unresolved(dead_letter)
        _resolve(dead_letter, resolution, actor, now)
        _record(actor, action, dead_letter, now, before=OPEN, after=resolution)


# A dead letter before an operator resolves it, as the action log shows it (open → replayed…).
OPEN = "open"


def _record(actor: Actor, action: Action, row, now: datetime, *, before: Any, after: Any) -> None:
    """One action-log row for a dead letter or a queue row, named as an operator reads it."""
    what = "dead letter" if isinstance(row, DeadLetter) else "queue row"
    target = f"{what} #{row.pk} ({row.entity} {row.object_id})"
    actions.record(actor, action, target, before=before, after=after, at=now, obj=row)


def resolve_superseded(entity: str, stored: dict[str, datetime], *, by: str, now: datetime) -> int:
    """Resolve as `superseded` the open dead letters of `entity` whose object already holds the
    same or a newer version (`stored`: queue object id → the version its ERP row holds).

    A dead letter's version is its queue row's, else the one its payload names (a failure at the
    door). One without a readable version is left open: nothing says the stored one overtook it.
    """
    if not stored:
        return 0
    open_letters = DeadLetter.objects.unresolved().filter(entity=entity, object_id__any_of=stored)
    overtaken = []
    rows = open_letters.values_list("pk", "object_id", "queue_item__version", "payload")
    for pk, object_id, row_version, payload in rows:
        version = row_version or (payloads.version_of(payload) if isinstance(payload, dict) else None)
        held = stored[object_id]
        if version is not None and held is not None and version <= held:
            overtaken.append(pk)
    if not overtaken:
        return 0
    return (
        DeadLetter.objects.unresolved()
        .filter(pk__in=overtaken)
        .update(resolution=DeadLetter.Resolution.SUPERSEDED, resolved_by=by, resolved_at=now)
    )


def check_replay(dead_letter: DeadLetter) -> QueueItem:
    """The queue row a replay would send back, or DeadLetterError saying why there is none.

    Reads only, so a dry run can answer without writing (or logging) a replay it would undo."""
    return _replayable(dead_letter, lock=False)[1]


def _replayable(dead_letter: DeadLetter, *, lock: bool) -> tuple[DeadLetter, QueueItem]:
    dead_letter = _unresolved(dead_letter, lock=lock)
    if dead_letter.queue_item_id is None:
        raise NotReplayable(
            f"dead letter #{dead_letter.pk} is a shape failure at ingest and has no queue row to replay; "
            "discard it, or mark it fixed once the change has reached the ERP another way"
        )
    items = QueueItem.objects.select_for_update() if lock else QueueItem.objects
    item = items.get(pk=dead_letter.queue_item_id)
    if item.status != QueueItem.Status.DEAD_LETTER:
        raise NotReplayable(f"queue row #{item.pk} is {item.status}, not dead_letter")
    return dead_letter, item


def _unresolved(dead_letter: DeadLetter, *, lock: bool = True) -> DeadLetter:
    rows = DeadLetter.objects.select_for_update() if lock else DeadLetter.objects
    found = rows.get(pk=dead_letter.pk)
    if found.resolved_at is not None:
        raise AlreadyResolved(
            f"dead letter #{found.pk} was already {found.resolution} by {found.resolved_by or '?'} "
            f"at {found.resolved_at:%Y-%m-%d %H:%M:%S}"
        )
    return found


def _resolve(dead_letter: DeadLetter, resolution: str, actor: Actor, now: datetime) -> None:
    dead_letter.resolution, dead_letter.resolved_by, dead_letter.resolved_at = resolution, actor.name, now
    dead_letter.save(update_fields=["resolution", "resolved_by", "resolved_at"])


# --- Pause and resume (config `paused_entities`) ----------------------------------------------------


def pause(entities: list[str], *, actor: Actor) -> list[str]:
    """Stop applying these entities; their webhooks are still received and queued."""
    return _change_paused(entities, Action.PAUSE, lambda paused: paused | set(entities), actor=actor)


def resume(entities: list[str], *, actor: Actor) -> list[str]:
    return _change_paused(entities, Action.RESUME, lambda paused: paused - set(entities), actor=actor)


def held_rows() -> dict[str, int]:
    """Each paused entity and the rows it holds back (waiting to be applied), in the order of the key."""
    paused = config.get(PAUSED_ENTITIES)
    waiting = QueueItem.objects.filter(status__in=QueueItem.WAITING, entity__in=paused)
    counts = dict(waiting.values_list("entity").annotate(n=Count("id")).order_by())
    return {entity: counts.get(entity, 0) for entity in paused}


def _change_paused(
    entities: list[str], action: Action, change: Callable[[set[str]], set[str]], *, actor: Actor
) -> list[str]:
    """Read, change and store `paused_entities` as one update under the row's lock; one action-log
    row per entity named (a pause, not a configuration change: the operator paused an entity).

    So two pauses at once both hold: computed from config.get(), a copy read before the write, the
    later of two concurrent writes dropped the other's entity. (SQLite takes the database's write
    lock at BEGIN here: transaction_mode IMMEDIATE.)
    """
    with transaction.atomic():
        locked = Configuration.objects.select_for_update().filter(key=PAUSED_ENTITIES.name)
        if not locked.exists():
            config.ensure_rows()
        before = sorted(locked.get().value)
        after = config.update(PAUSED_ENTITIES, sorted(change(set(before))), actor=actor, logged=False)
        for slug in sorted(set(entities)):
            actions.record(actor, action, slug, before=before, after=after)
        return after
