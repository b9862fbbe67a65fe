"""The state machine of a queue row, in one place (DESIGN.md "Rooms").

pending ─claim─► processing ─► completed | skipped | retry | dead_letter
retry ─(next_attempt_at)─► claim again;  dead_letter ─replay─► pending
Waiting rows of an object are skipped as `superseded` when a strictly newer version arrives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sync.models import DeadLetter, InboxEvent, QueueItem


def enqueue(
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
) -> QueueItem:
    """Insert a pending row and supersede older waiting versions of the same object.

    Call inside the transaction that stores whatever produced the change (the inbox row, a pull
    page), so the change and its queue row commit together. A delete without a version takes its
    receive time (SPEC §6), so it orders after everything received before it.
    """
    if operation == QueueItem.Operation.DELETE and version is None:
        version = now
    item = QueueItem.objects.create(
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
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    if version is not None:
        supersede_older(item, now=now)
    return item


def supersede_older(item: QueueItem, *, now: datetime) -> int:
    """Skip waiting rows of the same object with a strictly older version.

    A summary (list row) only supersedes summaries: an older detail still carries lines that a
    summary does not, so it is applied first and the summary then updates the header.
    """
    older = QueueItem.objects.filter(
        entity=item.entity,
        object_id=item.object_id,
        status__in=QueueItem.WAITING,
        version__lt=item.version,
    ).exclude(pk=item.pk)
    if item.is_summary:
        older = older.filter(is_summary=True)
    inbox_ids = list(older.exclude(inbox_event=None).values_list("inbox_event_id", flat=True))
    count = older.update(
        status=QueueItem.Status.SKIPPED,
        skip_reason=QueueItem.SkipReason.SUPERSEDED,
        finished_at=now,
        updated_at=now,
    )
    if inbox_ids:
        InboxEvent.objects.filter(pk__in=inbox_ids).update(status=InboxEvent.Status.PROCESSED)
    return count


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
