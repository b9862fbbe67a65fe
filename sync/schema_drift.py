"""Schema drift: the fields Zoho sends that the mapping does not read.

Checked on the apply path, for every upsert whatever brought it (webhook, pull, replay, repair,
rebuild): price lists and users only ever come by pulls, and there the payload is already parsed
and unwrapped. A field is known when a column reads it (the handler's declarations and renames),
when the mapping leaves it unread on purpose (sync.handlers.unread), or when it is a custom field
(`custom_fields`, `custom_field_hash`, any `cf_…` key) or a version field.

Depth: the top-level keys of the object, and the top-level keys of each of its lines, as
`line_items[].field` (the entity's own line key: `invoices[]` on a payment, `locations[]` on an
item's stock). A nested block (an address, `lock_details`) is one field: its inner keys are Zoho's
presentation, which the mapping never reads, and following them would raise an alarm for every
new flag Zoho adds inside a block nobody stores.

Cost: a payload's keys as a frozenset, looked up in a per-process cache of answers, so each
distinct set of keys is compared with the known set once; a batch in which nothing is new writes
nothing. A batch that carries new fields writes one upsert for them, inside the apply's transaction
(rolled back with it, so a bisected batch is not counted twice): the first sighting creates the row
(first seen, an example object id), later ones raise `count` and `last_seen`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from sync.config_keys import SCHEMA_DRIFT_ENABLED
from sync.models import SchemaDrift
from sync.payloads import VERSION_FIELDS
from tdscore import actions, config
from tdscore.enums import Action

CUSTOM_FIELDS = frozenset({"custom_fields", "custom_field_hash", *VERSION_FIELDS})
CUSTOM_PREFIX = "cf_"
# Distinct key sets remembered per shape; past it answers are still right, only not remembered
# (a sender inventing keys cannot grow a drainer's memory without bound).
CACHE_LIMIT = 1024
PATH_CHARS = SchemaDrift._meta.get_field("path").max_length
ID_CHARS = SchemaDrift._meta.get_field("example_object_id").max_length


@dataclass(frozen=True, eq=False)
class Known:
    """The fields one handler knows: of the object (None: another entity reports them) and of its lines."""

    header: frozenset[str] | None
    line_keys: tuple[str, ...] = ()
    lines: frozenset[str] = frozenset()
    _answers: dict[tuple[str, frozenset[str]], tuple[str, ...]] = field(default_factory=dict, repr=False)

    def unknown(self, obj: dict[str, Any]) -> tuple[str, ...]:
        """The paths of `obj` nothing knows (empty for a payload of a known shape)."""
        found = self._answer("", frozenset(obj)) if self.header is not None else ()
        for key in self.line_keys:
            rows = obj.get(key)
            if type(rows) is list and rows:
                # Which line fields are unknown depends only on the union of the lines' keys: one
                # lookup for all the lines of an object, not one per line.
                keys: set[str] = set()
                for row in rows:
                    if type(row) is dict:
                        keys.update(row)
                found += self._answer(key, frozenset(keys))
        return found

    def _answer(self, line_key: str, keys: frozenset[str]) -> tuple[str, ...]:
        cached = self._answers.get((line_key, keys))
        if cached is not None:
            return cached
        known = self.lines if line_key else self.header
        new = sorted(k for k in keys - known if k not in CUSTOM_FIELDS and not k.startswith(CUSTOM_PREFIX))
        answer = tuple(f"{line_key}[].{k}" if line_key else k for k in new)
        if len(self._answers) < CACHE_LIMIT:
            self._answers[(line_key, keys)] = answer
        return answer


def observe(entity: str, known: Known, objects: Sequence[tuple[str, dict[str, Any]]], *, now: datetime) -> int:
    """Record the unknown fields among `objects` ((object id, payload) pairs) of one batch.

    Call inside the apply's transaction. Returns how many distinct paths were written (0: none new).
    """
    if not config.get(SCHEMA_DRIFT_ENABLED):
        return 0
    seen: dict[str, list] = {}  # path -> [objects carrying it, an example object id]
    for object_id, obj in objects:
        for path in known.unknown(obj):
            path = path[:PATH_CHARS]  # as stored: two long paths cut alike are one row
            if path in seen:
                seen[path][0] += 1
            else:
                seen[path] = [1, object_id]
    if seen:
        _record(entity, seen, now)
    return len(seen)


def _record(entity: str, seen: dict[str, list], now: datetime) -> None:
    """One upsert: new paths are inserted, known ones counted. Sorted, so two drainers writing the
    same paths lock them in the same order and never deadlock."""
    table = SchemaDrift._meta.db_table
    at = connection.ops.adapt_datetimefield_value(now)
    rows, params = [], []
    for path in sorted(seen):
        count, example = seen[path]
        rows.append("(%s, %s, %s, %s, %s, %s, '')")
        params += [entity, path, at, at, count, example[:ID_CHARS]]
    sql = (
        f"INSERT INTO {table} (entity, path, first_seen, last_seen, count, example_object_id, acknowledged_by) "
        f"VALUES {', '.join(rows)} ON CONFLICT (entity, path) DO UPDATE "
        f"SET count = {table}.count + excluded.count, last_seen = excluded.last_seen"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


class AlreadyAcknowledged(ValueError):
    pass


def acknowledge(drift: SchemaDrift, *, actor: actions.Actor, now: datetime) -> SchemaDrift:
    """Mark a drift row seen by an operator, with one row in the action log."""
    with transaction.atomic():
        drift = SchemaDrift.objects.select_for_update().get(pk=drift.pk)
        if drift.acknowledged_at is not None:
            raise AlreadyAcknowledged(
                f"{drift.entity} {drift.path} was already acknowledged by {drift.acknowledged_by or '?'} "
                f"at {drift.acknowledged_at:%Y-%m-%d %H:%M:%S}"
            )
        drift.acknowledged_at, drift.acknowledged_by = now, actor.name[:150]
        drift.save(update_fields=["acknowledged_at", "acknowledged_by"])
        actions.record(
            actor,
            Action.DRIFT_ACKNOWLEDGE,
            f"schema drift #{drift.pk} {drift.entity} {drift.path}",
            before={"acknowledged": False},
            after={"acknowledged": True},
            at=now,
        )
    return drift
