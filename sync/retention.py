"""Retention (`manage.py cleanup`, scheduled daily): delete what has served its purpose.

What goes, each after its configured age: sync logs, metric points, resolved dead letters, finished
queue rows, inbox rows (only when their queue rows are finished and no unresolved dead letter
points at them), the Zoho call log and django-q2's stored task results. What never goes: an
unresolved dead letter, the queue and inbox rows it points at, a row still waiting or in flight,
and the audit trail (it holds plain ids precisely so these deletions leave it whole).

Deletes go by primary-key batches (`cleanup_batch_size`), one short transaction each, so webhooks
and drainers writing the same tables wait at most one batch. On PostgreSQL each batch sets a short
`lock_timeout` and skips rows locked by others (`SKIP LOCKED`): cleanup gives way, never the
pipeline. One cleanup runs at a time (an advisory lock on PostgreSQL, a file lock beside an SQLite
database). With an archive directory, each batch is appended as gzipped JSON Lines and synced to
disk before its DELETE runs.
"""

from __future__ import annotations

import base64
import fcntl
import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError, connection, models, transaction
from django.db.models import Q
from django_q.models import Task

from sync.config_keys import (
    CLEANUP_BATCH_SIZE,
    DEAD_LETTER_RETENTION_DAYS,
    INBOX_RETENTION_DAYS,
    LOG_RETENTION_DAYS,
    METRIC_RETENTION_DAYS,
    QUEUE_RETENTION_DAYS,
    TASK_RESULT_RETENTION_DAYS,
    ZOHO_CALL_LOG_RETENTION_DAYS,
)
from sync.models import CleanupSweep, DeadLetter, InboxEvent, QueueItem, SyncLog
from sync.zoho.models import ZohoCall
from tdscore import config
from tdscore.config import Key
from tdscore.models import Metric

LOCK_TIMEOUT = "2s"
ADVISORY_LOCK_KEY = 0x7D5C1EA7  # any constant: "tds cleanup"


class CleanupRunning(Exception):
    """Another cleanup holds the lock."""


@dataclass(frozen=True)
class Target:
    """One kind of row cleanup deletes: its age key, the expired rows, those kept all the same, and
    the rows that point at it (unlinked or deleted first)."""

    name: str
    model: type[models.Model]
    days: Key
    expired: Callable[[datetime], models.QuerySet]
    # Of a batch of expired ids, those that must stay (an unresolved dead letter still needs them).
    kept: Callable[[list], set] | None = None
    # (table, column, action) of rows that point at this one: "null" the link or "delete" them.
    dependents: tuple[tuple[str, str, str], ...] = ()
    # Rows the audit trail links by id: each sweep's range of ids is kept (CleanupSweep), so a link
    # to a removed row says when cleanup removed it.
    remembered: bool = False


# The kept rows are found by probing the batch's ids (one indexed lookup each), never by an
# anti-join over the whole table: after a large delete the queue's indexes are full of dead entries
# until VACUUM, and a merge anti-join walked all of them again for every batch (110 rows/s).


def kept_queue_rows(ids: list) -> set:
    return _ids("SELECT queue_item_id FROM tds_dead_letter_queue WHERE resolved_at IS NULL AND queue_item_id {}", ids)


def kept_inbox_rows(ids: list) -> set:
    unfinished = ", ".join(["%s"] * len(QueueItem.FINISHED))
    return (
        _ids(
            f"SELECT inbox_event_id FROM tds_sync_queue WHERE status NOT IN ({unfinished}) AND inbox_event_id {{}}",
            ids,
            before=list(QueueItem.FINISHED),
        )
        | _ids("SELECT inbox_event_id FROM tds_dead_letter_queue WHERE resolved_at IS NULL AND inbox_event_id {}", ids)
        | _ids(
            "SELECT q.inbox_event_id FROM tds_dead_letter_queue d JOIN tds_sync_queue q ON q.id = d.queue_item_id"
            " WHERE d.resolved_at IS NULL AND q.inbox_event_id {}",
            ids,
        )
    )


def _ids(sql: str, ids: list, *, before: list | None = None) -> set:
    matching, params = _any(ids)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(matching), [*(before or []), *params])
        return {row[0] for row in cursor.fetchall()}


TARGETS = (
    Target("logs", SyncLog, LOG_RETENTION_DAYS, lambda cutoff: SyncLog.objects.filter(at__lt=cutoff)),
    Target("metrics", Metric, METRIC_RETENTION_DAYS, lambda cutoff: Metric.objects.filter(at__lt=cutoff)),
    Target(
        "dead_letters",
        DeadLetter,
        DEAD_LETTER_RETENTION_DAYS,
        lambda cutoff: DeadLetter.objects.filter(resolved_at__lt=cutoff),
    ),
    Target(
        "queue",
        QueueItem,
        QUEUE_RETENTION_DAYS,
        lambda cutoff: QueueItem.objects.filter(status__in=QueueItem.FINISHED, finished_at__lt=cutoff),
        kept=kept_queue_rows,
        dependents=(("tds_sync_logs", "queue_item_id", "delete"), ("tds_dead_letter_queue", "queue_item_id", "null")),
        remembered=True,
    ),
    Target(
        "inbox",
        InboxEvent,
        INBOX_RETENTION_DAYS,
        lambda cutoff: InboxEvent.objects.filter(received_at__lt=cutoff),
        kept=kept_inbox_rows,
        dependents=(("tds_sync_queue", "inbox_event_id", "null"), ("tds_dead_letter_queue", "inbox_event_id", "null")),
        remembered=True,
    ),
    Target(
        "zoho_calls",
        ZohoCall,
        ZOHO_CALL_LOG_RETENTION_DAYS,
        lambda cutoff: ZohoCall.objects.filter(started_at__lt=cutoff, finished_at__isnull=False),
    ),
    Target(
        "task_results",
        Task,
        TASK_RESULT_RETENTION_DAYS,
        lambda cutoff: Task.objects.filter(Q(stopped__lt=cutoff) | Q(stopped__isnull=True, started__lt=cutoff)),
    ),
)


@dataclass
class Result:
    counts: dict[str, int] = field(default_factory=dict)
    # Targets stopped early because rows they needed were locked for longer than LOCK_TIMEOUT.
    interrupted: list[str] = field(default_factory=list)


def plan(*, now: datetime) -> dict[str, int]:
    """What a cleanup would delete now, by target (the dry run): the same walk, deleting nothing."""
    batch_size = config.get(CLEANUP_BATCH_SIZE)
    return {t.name: _sweep(t, now=now, batch_size=batch_size, dry_run=True)[0] for t in TARGETS}


def cleanup(
    *,
    now: datetime,
    archive: Path | None = None,
    batch_size: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Result:
    """Delete every target's expired rows in batches; `progress(target, rows)` after each batch."""
    batch_size = batch_size or config.get(CLEANUP_BATCH_SIZE)
    result = Result()
    with single_run():
        for target in TARGETS:
            deleted, whole = _sweep(target, now=now, archive=archive, batch_size=batch_size, progress=progress)
            result.counts[target.name] = deleted
            if not whole:
                result.interrupted.append(target.name)
    return result


def _cutoff(target: Target, now: datetime) -> datetime:
    return now - timedelta(days=config.get(target.days))


def _sweep(target, *, now, batch_size, archive=None, progress=None, dry_run=False) -> tuple[int, bool]:
    """Walk the expired rows by primary key, a batch a transaction; (rows deleted, walked to the end)."""
    expired = target.expired(_cutoff(target, now)).order_by("pk")
    deleted, after, sweep = 0, None, None
    while True:
        try:
            with transaction.atomic():
                picked = _next_batch(expired, after, batch_size, lock=not dry_run)
                if not picked:
                    return deleted, True
                kept = target.kept(picked) if target.kept else set()
                doomed = [pk for pk in picked if pk not in kept]
                if doomed and not dry_run:
                    if archive is not None:
                        _archive(archive, target, doomed, now)
                    _delete(target, doomed)
                    if target.remembered:
                        sweep = _remember(sweep, target, doomed, now)
        except OperationalError as exc:
            if not _is_lock_timeout(exc):
                raise
            return deleted, False  # left for the next run: the pipeline comes first
        deleted, after = deleted + len(doomed), picked[-1]
        if progress and doomed:
            progress(target.name, len(doomed))


def _next_batch(expired: models.QuerySet, after, batch_size: int, *, lock: bool) -> list:
    page = expired if after is None else expired.filter(pk__gt=after)
    if lock and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    if lock:
        # Locked rows (a webhook's, a drainer's) are skipped, not waited for; SQLite ignores this.
        page = page.select_for_update(skip_locked=True)
    return list(page.values_list("pk", flat=True)[:batch_size])


def _delete(target: Target, ids: list) -> None:
    quote = connection.ops.quote_name
    matching, params = _any(ids)
    with connection.cursor() as cursor:
        for table, column, action in target.dependents:
            if action == "delete":
                cursor.execute(f"DELETE FROM {quote(table)} WHERE {quote(column)} {matching}", params)
            else:
                cursor.execute(
                    f"UPDATE {quote(table)} SET {quote(column)} = NULL WHERE {quote(column)} {matching}", params
                )
        cursor.execute(f"DELETE FROM {quote(target.model._meta.db_table)} WHERE {quote('id')} {matching}", params)


def _remember(sweep: CleanupSweep | None, target: Target, doomed: list, now: datetime) -> CleanupSweep:
    """Widen this sweep's range by a batch, in the batch's transaction (batches go up by id)."""
    if sweep is None:
        return CleanupSweep.objects.create(
            target=target.name, first_id=doomed[0], last_id=doomed[-1], rows=len(doomed), at=now
        )
    sweep.last_id, sweep.rows = doomed[-1], sweep.rows + len(doomed)
    sweep.save(update_fields=["last_id", "rows"])
    return sweep


def _any(ids: list) -> tuple[str, list]:
    # One array parameter on PostgreSQL: psycopg parses a query of 5,000 placeholders for longer
    # than PostgreSQL takes to run it.
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [ids]
    return f"IN ({', '.join(['%s'] * len(ids))})", ids


def _is_lock_timeout(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "55P03"  # lock_not_available


# --- Archive -------------------------------------------------------------------------------------


class ArchiveEncoder(DjangoJSONEncoder):
    def default(self, o):
        if isinstance(o, bytes | memoryview):
            return base64.b64encode(bytes(o)).decode()  # the inbox's raw body, exactly as received
        return super().default(o)


def archive_path(directory: Path, target: str, now: datetime) -> Path:
    return directory / f"{target}-{now:%Y%m%dT%H%M%SZ}.jsonl.gz"


def _archive(directory: Path, target: Target, ids: list, now: datetime) -> None:
    """Append the batch as one gzip member (a file of members is one valid stream), synced to disk."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = target.model.objects.filter(pk__in=ids).order_by("pk").values()
    path = archive_path(directory, target.name, now)
    with open(path, "ab") as raw:
        with gzip.open(raw, "wt", encoding="utf-8") as out:
            for row in rows.iterator(chunk_size=1000):
                out.write(json.dumps(row, cls=ArchiveEncoder, ensure_ascii=False) + "\n")
        raw.flush()
        os.fsync(raw.fileno())


def read_archive(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


# --- One run at a time ---------------------------------------------------------------------------


@contextmanager
def single_run() -> Iterator[None]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise CleanupRunning("another cleanup is running (PostgreSQL advisory lock held)")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        return
    # SQLite is one machine's: a file lock is seen by every process using the database.
    name = hashlib.sha256(str(connection.settings_dict["NAME"]).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"tds-cleanup-{name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CleanupRunning("another cleanup is running (lock file held)") from None
        yield
