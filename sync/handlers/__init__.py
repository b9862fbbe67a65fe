"""Apply queue rows to the ERP tables: the contract between the handlers and the worker.

`apply_batch` runs inside the worker's transaction on rows it has claimed; it writes ERP rows, their
lines and audit rows, and returns an outcome per queue row. The worker owns the queue rows' status.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sync.errors import UnknownEntityError, ValidationFailed
from sync.handlers.apply import Handler
from sync.handlers.decisions import ApplyOutcome
from sync.handlers.declarations import HANDLERS
from sync.models import QueueItem

__all__ = ["ApplyOutcome", "apply_batch", "handler_for", "stored_versions"]


def handler_for(item: QueueItem) -> Handler:
    candidates = [h for h in HANDLERS if h.entity.slug == item.entity]
    if not candidates:
        raise UnknownEntityError(f"no handler for entity {item.entity!r}")
    for handler in candidates:
        if item.object_id.startswith(handler.prefix):
            return handler
    raise ValidationFailed(f"{item.entity} object id {item.object_id!r} has none of the expected prefixes")


def apply_batch(items: Sequence[QueueItem], *, now: datetime) -> dict[int, ApplyOutcome]:
    """Apply queue rows of ONE entity slug to the ERP tables.

    The caller holds a transaction (transaction.atomic()) and has claimed the rows. The ERP rows of
    the batch are locked, each row decided (versions, content hash, summary, tombstone), winners
    written in bulk with their lines and one AuditTrail row per applied change, all inside the
    caller's transaction. Queue rows' status is left to the caller. Several versions of one object
    are decided in (version, id) order: the newest wins, older ones come out stale.
    Raises ValidationFailed for a bad payload, failing the batch (the worker bisects it); a
    missing parent row never raises (its reference stays NULL).
    """
    if not items:
        return {}
    slugs = {item.entity for item in items}
    if len(slugs) > 1:
        raise ValueError(f"apply_batch takes rows of one entity, got {sorted(slugs)}")
    by_handler: dict[Handler, list[QueueItem]] = defaultdict(list)
    for item in items:
        by_handler[handler_for(item)].append(item)
    outcomes: dict[int, ApplyOutcome] = {}
    for handler, rows in by_handler.items():
        outcomes.update(handler.apply(rows, now))
    return outcomes


def stored_versions(entity: str, object_ids: Sequence[str]) -> dict[str, datetime | None]:
    """The version the ERP holds for each queue object id of `entity` that is stored (any other is left out)."""
    out: dict[str, datetime | None] = {}
    for handler in (h for h in HANDLERS if h.entity.slug == entity):
        mine = [o.removeprefix(handler.prefix) for o in object_ids if o.startswith(handler.prefix)]
        if handler.prefix == "":
            # The document handler of an entity with prefixes takes only its own ids.
            others = [h.prefix for h in HANDLERS if h.entity.slug == entity and h.prefix]
            mine = [o for o in mine if not any(o.startswith(p) for p in others)]
        for zoho_id, version in handler.stored_versions(mine).items():
            out[handler.prefix + zoho_id] = version
    return out
