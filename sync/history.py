"""An object's history, read from the audit trail: every version, where it came from, who caused it.

Each audit row names the queue row that wrote it, the webhook's inbox row or the pull run, and the
operator of a replay or repair (its `actor`). Retention may have deleted the queue and inbox rows
since; a link to one then says that cleanup removed it, and when (sync.models.CleanupSweep).
`state_as_of` rebuilds the object as it stood at a moment: the `after` of the last change at or
before it, or nothing before its creation and after a delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models

from sync import entities
from sync.models import AuditTrail, CleanupSweep, InboxEvent, QueueItem, SyncRun

# Changes that move an object's state; a redaction rewrites the past, it is not a version.
VERSIONS = (AuditTrail.Operation.CREATE, AuditTrail.Operation.UPDATE, AuditTrail.Operation.DELETE)


@dataclass(frozen=True)
class Link:
    """A row an audit row points at: there, or removed by cleanup (when), or unknown."""

    kind: str  # "queue", "inbox", "run": sync.retention's target names where it has one
    pk: int
    exists: bool
    cleaned_up_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.pk, "exists": self.exists, "cleaned_up_at": self.cleaned_up_at}

    def __str__(self) -> str:
        if self.exists:
            return f"{self.kind} #{self.pk}"
        if self.cleaned_up_at:
            return f"{self.kind} #{self.pk} cleaned up on {self.cleaned_up_at:%Y-%m-%d %H:%M}"
        return f"{self.kind} #{self.pk} (removed by retention)"


@dataclass(frozen=True)
class Version:
    row: AuditTrail
    queue: Link | None
    inbox: Link | None
    run: Link | None

    @classmethod
    def of(cls, row: AuditTrail) -> Version:
        return _linked([row])[0]


def object_id_of(entity: entities.Entity, record: models.Model) -> str:
    """The queue's id of an ERP row (its audit rows' object_id): stock rows carry a prefix."""
    if entity.kind == entities.Kind.STOCK:
        if record._meta.label == entity.snapshot_model:
            return f"{entity.snapshot_prefix}{record.item_id}"
        return f"{entity.document_prefix}{record.zoho_id}"
    return record.zoho_id


def entity_of(record: models.Model) -> entities.Entity | None:
    label = record._meta.label
    return next((e for e in entities.ENTITIES.values() if label in (e.erp_model, e.snapshot_model)), None)


def rows(entity: str, object_id: str) -> models.QuerySet:
    """The object's audit rows, oldest first (tds_audit_object)."""
    return AuditTrail.objects.filter(entity=entity, object_id=object_id).order_by("at", "pk")


def versions(entity: str, object_id: str) -> list[Version]:
    """Every version with its links resolved: three queries whatever the number of versions, and
    one per link to a row cleanup removed."""
    found = list(rows(entity, object_id).filter(operation__in=VERSIONS))
    return _linked(found)


def written_by(entity: str, object_id: str) -> Version | None:
    """The change that wrote the object's current version."""
    last = rows(entity, object_id).filter(operation__in=VERSIONS).last()
    return _linked([last])[0] if last else None


def state_as_of(entity: str, object_id: str, at: datetime) -> dict[str, Any] | None:
    """The object as it stood at `at`: None before its creation and after a delete."""
    last = rows(entity, object_id).filter(operation__in=VERSIONS, at__lte=at).last()
    if last is None or last.operation == AuditTrail.Operation.DELETE:
        return None
    return last.after


def _linked(found: list[AuditTrail]) -> list[Version]:
    queue = _present(QueueItem, {r.queue_item_id for r in found})
    inbox = _present(InboxEvent, {r.inbox_event_id for r in found})
    runs = _present(SyncRun, {r.run_id for r in found})
    return [
        Version(
            row,
            _link("queue", row.queue_item_id, queue),
            _link("inbox", row.inbox_event_id, inbox),
            _link("run", row.run_id, runs),
        )
        for row in found
    ]


def _present(model: type[models.Model], ids: set[int | None]) -> set[int]:
    ids.discard(None)
    return set(model.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()


def _link(kind: str, pk: int | None, present: set[int]) -> Link | None:
    if pk is None:
        return None
    if pk in present:
        return Link(kind, pk, True)
    sweep = CleanupSweep.of(kind, pk) if kind != "run" else None
    return Link(kind, pk, False, sweep.at if sweep else None)
