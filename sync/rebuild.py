"""Rebuilding an entity's ERP rows from their stored payloads (`manage.py rebuild_erp`).

After a mapping change (a new column, a fixed converter) the ERP rows hold values the old mapping
made from payloads they still keep in `raw`. A rebuild queues each live row's payload again, with
source `replay`, its stored version and a low priority (live changes go first), and lets the one
apply path map it again: no Zoho call, the same locks, version checks and audit rows as any
change. A `replay` row is never skipped as `unchanged` for carrying the stored hash (it always
does); it is applied when the new mapping gives different values and skipped as `unchanged` when
it gives the same. A newer version applied meanwhile makes it `stale`, as it should.

Stock levels keep each location's entry as applied: an item's snapshot is put back together from
them. Tombstoned rows are left alone (a delete has no payload to map).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime

from django.apps import apps
from django.db.models import Count, Q, QuerySet

from sync import entities
from sync.models import QueueItem
from sync.queue import enqueue_many

CHUNK = 1000
PRIORITY = -1  # below webhooks and pulls (0)


def queue_rebuild(slug: str, *, now: datetime, progress: Callable[[int], None] | None = None) -> int:
    """Queue a `replay` row for every live ERP row of the entity; the rows it queued share `now`.

    `progress(queued so far)` after each chunk of CHUNK rows.
    """
    queued, chunk = 0, []
    for object_id, payload, version, is_summary in _stored(entities.get(slug)):
        chunk.append(
            QueueItem(
                entity=slug,
                object_id=object_id,
                payload=payload,
                version=version,
                is_summary=is_summary,
                source=QueueItem.Source.REPLAY,
                priority=PRIORITY,
            )
        )
        if len(chunk) == CHUNK:
            queued += enqueue_many(chunk, now=now)
            chunk = []
            if progress:
                progress(queued)
    return queued + (enqueue_many(chunk, now=now) if chunk else 0)


def _stored(entity: entities.Entity) -> Iterator[tuple[str, dict, datetime | None, bool]]:
    if entity.kind != entities.Kind.STOCK:
        yield from _live(apps.get_model(entity.erp_model), "")
        return
    yield from _live(apps.get_model(entity.erp_model), entity.document_prefix)
    yield from _item_snapshots(entity)


def _live(model, prefix: str) -> Iterator[tuple[str, dict, datetime | None, bool]]:
    rows = model.objects.filter(deleted_at__isnull=True).order_by("pk")
    for zoho_id, raw, version, is_summary in rows.values_list(
        "zoho_id", "raw", "zoho_last_modified", "is_summary"
    ).iterator(chunk_size=CHUNK):
        yield prefix + zoho_id, raw, version, is_summary


def _item_snapshots(entity: entities.Entity) -> Iterator[tuple[str, dict, datetime | None, bool]]:
    """Each item's snapshot, from its level rows (one location entry each, as applied)."""
    levels = (
        apps.get_model(entity.snapshot_model).objects.filter(deleted_at__isnull=True).order_by("item_id", "zoho_id")
    )
    by_item: dict[str, list] = defaultdict(list)
    versions: dict[str, datetime | None] = {}
    for item_id, raw, version in levels.values_list("item_id", "raw", "zoho_last_modified").iterator(chunk_size=CHUNK):
        by_item[item_id].append(raw)
        versions[item_id] = max(filter(None, [versions.get(item_id), version]), default=None)
    for item_id, locations in by_item.items():
        yield entity.snapshot_prefix + item_id, {"item_id": item_id, "locations": locations}, versions[item_id], False


def rows_of(slug: str, now: datetime) -> QuerySet:
    """The rows a rebuild started at `now` queued."""
    return QueueItem.objects.filter(entity=slug, source=QueueItem.Source.REPLAY, created_at=now)


def tally(slug: str, now: datetime) -> dict[str, int]:
    """Where the rebuild's rows are: waiting, applied, unchanged, stale, dead-lettered…"""
    counts = (
        rows_of(slug, now).values("status", "skip_reason").annotate(n=Count("id")).order_by("status", "skip_reason")
    )
    out: dict[str, int] = defaultdict(int)
    for row in counts:
        if row["status"] == QueueItem.Status.COMPLETED:
            out["applied"] += row["n"]
        elif row["status"] == QueueItem.Status.SKIPPED:
            out[row["skip_reason"]] += row["n"]
        else:
            out[row["status"]] += row["n"]
    return dict(out)


def unfinished(slug: str, now: datetime) -> int:
    return rows_of(slug, now).filter(~Q(status__in=QueueItem.FINISHED)).count()
