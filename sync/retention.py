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
from django.db.models import Exists, OuterRef, Q
from django_q.models import Task

from sync.models import DeadLetter, InboxEvent, QueueItem, SyncLog
from sync.zoho.models import ZohoCall
from tdscore import config
from tdscore.models import Metric

LOCK_TIMEOUT = "2s"
ADVISORY_LOCK_KEY = 0x7D5C1EA7  # any constant: "tds cleanup"


class CleanupRunning(Exception):
    """Another cleanup holds the lock."""


@dataclass(frozen=True)
class Target:
    """One kind of row cleanup deletes: its name, age key, and what must be unlinked first."""

    name: str
    model: type[models.Model]
    days_key: str
    eligible: Callable[[datetime], models.QuerySet]
    # (table, column, action) of rows that point at this one: "null" the link or "delete" them.
    dependents: tuple[tuple[str, str, str], ...] = ()


def _unresolved_dead_letters(**link) -> Exists:
    return Exists(DeadLetter.objects.unresolved().filter(**link))


def finished_queue_rows(cutoff: datetime) -> models.QuerySet:
    return QueueItem.objects.filter(status__in=QueueItem.FINISHED, finished_at__lt=cutoff).exclude(
        _unresolved_dead_letters(queue_item=OuterRef("pk"))
    )


def done_inbox_rows(cutoff: datetime) -> models.QuerySet:
    unfinished = QueueItem.objects.filter(inbox_event=OuterRef("pk")).exclude(status__in=QueueItem.FINISHED)
    return (
        InboxEvent.objects.filter(received_at__lt=cutoff)
        .exclude(Exists(unfinished))
        .exclude(_unresolved_dead_letters(inbox_event=OuterRef("pk")))
        .exclude(_unresolved_dead_letters(queue_item__inbox_event=OuterRef("pk")))
    )


TARGETS = (
    Target("logs", SyncLog, "log_retention_days", lambda cutoff: SyncLog.objects.filter(at__lt=cutoff)),
    Target("metrics", Metric, "metric_retention_days", lambda cutoff: Metric.objects.filter(at__lt=cutoff)),
    Target(
        "dead_letters",
        DeadLetter,
        "dead_letter_retention_days",
        lambda cutoff: DeadLetter.objects.filter(resolved_at__lt=cutoff),
    ),
    Target(
        "queue",
        QueueItem,
        "queue_retention_days",
        finished_queue_rows,
        dependents=(("tds_sync_logs", "queue_item_id", "delete"), ("tds_dead_letter_queue", "queue_item_id", "null")),
    ),
    Target(
        "inbox",
        InboxEvent,
        "inbox_retention_days",
        done_inbox_rows,
        dependents=(("tds_sync_queue", "inbox_event_id", "null"), ("tds_dead_letter_queue", "inbox_event_id", "null")),
    ),
    Target(
        "zoho_calls",
        ZohoCall,
        "zoho_call_log_retention_days",
        lambda cutoff: ZohoCall.objects.filter(started_at__lt=cutoff, finished_at__isnull=False),
    ),
    Target(
        "task_results",
        Task,
        "task_result_retention_days",
        lambda cutoff: Task.objects.filter(Q(stopped__lt=cutoff) | Q(stopped__isnull=True, started__lt=cutoff)),
    ),
)


@dataclass
class Result:
    counts: dict[str, int] = field(default_factory=dict)
    # Targets stopped early because rows they needed were locked for longer than LOCK_TIMEOUT.
    interrupted: list[str] = field(default_factory=list)


def plan(*, now: datetime) -> dict[str, int]:
    """What a cleanup would delete now, by target (the dry run)."""
    return {t.name: t.eligible(_cutoff(t, now)).count() for t in TARGETS}


def cleanup(
    *,
    now: datetime,
    archive: Path | None = None,
    batch_size: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Result:
    """Delete every target's expired rows in batches; `progress(target, rows)` after each batch."""
    batch_size = batch_size or config.get("cleanup_batch_size")
    result = Result()
    with single_run():
        for target in TARGETS:
            deleted, whole = _sweep(target, now=now, archive=archive, batch_size=batch_size, progress=progress)
            result.counts[target.name] = deleted
            if not whole:
                result.interrupted.append(target.name)
    return result


def _cutoff(target: Target, now: datetime) -> datetime:
    return now - timedelta(days=config.get(target.days_key))


def _sweep(target, *, now, archive, batch_size, progress) -> tuple[int, bool]:
    eligible = target.eligible(_cutoff(target, now)).order_by("pk")
    deleted, after = 0, None
    while True:
        try:
            with transaction.atomic():
                ids = _next_batch(eligible, after, batch_size)
                if not ids:
                    return deleted, True
                if archive is not None:
                    _archive(archive, target, ids, now)
                _delete(target, ids)
        except OperationalError as exc:
            if not _is_lock_timeout(exc):
                raise
            return deleted, False  # left for the next run: the pipeline comes first
        deleted, after = deleted + len(ids), ids[-1]
        if progress:
            progress(target.name, len(ids))


def _next_batch(eligible: models.QuerySet, after, batch_size: int) -> list:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    page = eligible if after is None else eligible.filter(pk__gt=after)
    # Locked rows (a webhook's, a drainer's) are skipped, not waited for; SQLite ignores this.
    return list(page.select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch_size])


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
