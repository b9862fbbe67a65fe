"""The decision rules of the apply path, pure: which queue row wins against the stored object.

`judge` compares one change with its record (versions, content hash, summary, tombstone); `decide`
orders a batch's changes per object and applies the winners to the records in memory, returning an
outcome per queue row, the audit rows and the records to write. Nothing here reads or writes the
database: the handlers (sync.handlers.apply) load the records under lock and store what was decided.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from django.db import models

from sync.models import AuditTrail, QueueItem

EARLIEST = datetime.min.replace(tzinfo=UTC)


class ApplyOutcome(models.TextChoices):
    """What applying a queue row came to (the worker files every outcome but APPLIED as a skip)."""

    APPLIED = "applied"
    STALE = "stale"
    UNCHANGED = "unchanged"
    SUMMARY = "summary"  # a list row that would override a detail of the same version


@dataclass
class Change:
    """One queue row, validated and mapped."""

    item: QueueItem
    zoho_id: str
    obj: dict[str, Any]
    values: dict[str, Any]
    lines: list[dict[str, Any]] | None  # None: the payload has no lines (a summary, a delete)

    @property
    def version(self) -> datetime | None:
        return self.item.version

    @property
    def delete(self) -> bool:
        return self.item.operation == QueueItem.Operation.DELETE

    @property
    def summary(self) -> bool:
        return self.item.is_summary and not self.delete

    @property
    def rebuild(self) -> bool:
        """A stored payload re-applied (`rebuild_erp`, source `replay`) after the mapping changed."""
        return self.item.source == QueueItem.Source.REPLAY

    def overtaken_by(self, later: Change) -> bool:
        """A strictly newer row of the same object in the batch makes this one stale without applying it.

        Except a summary over a detail: the older detail's lines are applied first, then the
        summary's header (the same rule as supersede at enqueue).
        """
        if self.version is None or later.version is None or later.version <= self.version:
            return False
        return not (later.summary and not self.summary)


class Record(Protocol):
    """What the decision needs of the stored object a batch is deciding (an ERP row, an item's stock)."""

    exists: bool

    @property
    def version(self) -> datetime | None: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def is_summary(self) -> bool: ...
    @property
    def deleted_at(self) -> datetime | None: ...
    def state(self) -> dict[str, Any]: ...
    def apply(self, change: Change, now: datetime) -> None: ...
    def tombstone(self, change: Change, now: datetime) -> None: ...


def highest(stored: datetime | None, version: datetime | None) -> datetime | None:
    """The version an object holds after a change: never lower than what it held.

    A change without a version still applies (it cannot be proven stale) but leaves the stored
    version as it was, so a change older than that version, arriving after it, is still stale.
    """
    if stored is None:
        return version
    if version is None:
        return stored
    return max(stored, version)


def judge(record: Record, change: Change) -> ApplyOutcome:
    """Older → stale; same hash → unchanged; a summary never overrides a detail of its version.

    Tombstones: an upsert revives a deleted row only with a version strictly newer than the
    delete's (a delete always has one: its receive time when Zoho gave none). An upsert without a
    version cannot prove it is newer, so it does not revive — the one case where "no version is
    never stale" gives way, because bringing back a deleted row on a guess is the worse error.
    """
    stored = record.version
    older = change.version is not None and stored is not None and change.version < stored
    if change.delete:
        if older:
            return ApplyOutcome.STALE
        return ApplyOutcome.UNCHANGED if record.deleted_at else ApplyOutcome.APPLIED
    if record.deleted_at:
        newer = change.version is not None and stored is not None and change.version > stored
        return ApplyOutcome.APPLIED if newer else ApplyOutcome.STALE
    if older:
        return ApplyOutcome.STALE
    # A rebuild brings the very payload that is stored: its hash always matches, and the mapping
    # is what may have changed, so it is mapped again (decide() then skips it if nothing differs).
    if change.item.content_hash == record.content_hash and not change.rebuild:
        return ApplyOutcome.UNCHANGED
    if change.summary and record.exists and not record.is_summary and change.version == stored:
        return ApplyOutcome.SUMMARY
    return ApplyOutcome.APPLIED


def _order(change: Change) -> tuple[datetime, int]:
    # Versions ascending; rows without a version by arrival (queue id), before versioned rows of the
    # same object in the batch (they cannot be placed on Zoho's clock, and are never stale).
    return (change.version or EARLIEST, change.item.pk)


def decide(
    changes: Sequence[Change], records: dict[str, Record], now: datetime
) -> tuple[dict[int, ApplyOutcome], list[AuditTrail], list[Record]]:
    """Decide every row against its record, applying winners to the records in memory."""
    outcomes: dict[int, ApplyOutcome] = {}
    audits: list[AuditTrail] = []
    touched: dict[str, Record] = {}
    groups: dict[str, list[Change]] = defaultdict(list)
    for change in sorted(changes, key=_order):
        groups[change.zoho_id].append(change)
    for zoho_id, group in groups.items():
        record = records[zoho_id]
        for i, change in enumerate(group):
            if any(change.overtaken_by(later) for later in group[i + 1 :]):
                outcome = ApplyOutcome.STALE
            else:
                outcome = judge(record, change)
            if outcome == ApplyOutcome.APPLIED:
                audit = _apply(record, change, now)
                if change.rebuild and not audit.changed_fields:
                    outcome = ApplyOutcome.UNCHANGED  # mapped again, the same: no write, no audit row
                else:
                    audits.append(audit)
                    touched[zoho_id] = record
            outcomes[change.item.pk] = outcome
    return outcomes, audits, list(touched.values())


def _apply(record: Record, change: Change, now: datetime) -> AuditTrail:
    before = record.state() if record.exists else None
    if change.delete:
        operation = AuditTrail.Operation.DELETE
        record.tombstone(change, now)
    else:
        operation = AuditTrail.Operation.UPDATE if record.exists else AuditTrail.Operation.CREATE
        record.apply(change, now)
    record.exists = True
    after = record.state()
    if before is None:
        changed = [k for k, v in after.items() if v not in (None, "", [])]
    else:
        changed = [k for k in after if after[k] != before.get(k)]
    item = change.item
    return AuditTrail(
        entity=item.entity,
        object_id=item.object_id,
        operation=operation,
        before=jsonable(before),
        after=jsonable(after),
        changed_fields=changed,
        version=change.version,
        source=item.source,
        queue_item_id=item.pk,
        inbox_event_id=item.inbox_event_id,
        run_id=item.sync_run_id,
        actor=item.requested_by,
        at=now,
    )


# Values JSON holds as they are. Most of a state's values are these, and jsonable() runs over the
# before and after of every audit row: they are passed through without a call or an isinstance each.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, dict):
        return {k: v if type(v) in _PLAIN else jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    return value
