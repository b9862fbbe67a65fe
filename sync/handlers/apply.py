"""The apply path every entity shares: validate → lock → decide → write → lines → audit.

The decision itself is pure (sync.handlers.decisions); this module reads the rows under lock and
writes what was decided.

An entity is a declaration (`Handler(slug, Model, lines=Lines(...), renames=...)`): its columns,
their converters and its parent references are read from the ERP model, so each of the eleven is a
few lines. The whole batch costs a fixed number of queries whatever its size: one advisory lock
and one SELECT … FOR UPDATE for the stored rows, one read of their lines, one query per parent
type, one bulk upsert, one DELETE and one bulk INSERT of lines, one bulk INSERT of audit rows;
one upsert of the parents it found missing (only when some are), and for a parent entity one
read of the children waiting for it (sync.parents).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from django.db import connection, models

from sync import entities, parents, payloads, queue, schema_drift
from sync.errors import ValidationFailed
from sync.handlers import bulk, values
from sync.handlers.decisions import ApplyOutcome, Change, Record, decide, highest
from sync.models import AuditTrail, QueueItem

# resolved_by on a dead letter the apply path found overtaken.
RESOLVER = "sync"
# Columns every ERP row has that the sync itself fills, never a Zoho field of the same name.
BOOKKEEPING = {"id", "zoho_id", "zoho_last_modified", "content_hash", "raw", "is_summary", "synced_at", "deleted_at"}


class Columns:
    """A model's Zoho-fed columns (name, Zoho keys tried in order, converter) and parent references."""

    def __init__(self, model: type[models.Model], renames: dict[str, tuple[str, ...]], skip: Iterable[str] = ()):
        self.fields: list[tuple[str, tuple[str, ...], values.Convert]] = []
        # (attname of the `<parent>_ref` foreign key, the Zoho id column beside it, the parent model)
        self.parents: list[tuple[str, str, type[models.Model]]] = []
        for f in model._meta.concrete_fields:
            if f.is_relation:
                if f.name.endswith("_ref"):
                    self.parents.append((f.attname, f.name.removesuffix("_ref") + "_id", f.related_model))
            elif f.name not in BOOKKEEPING and f.name not in skip:
                self.fields.append((f.name, renames.get(f.name, (f.name,)), values.for_field(f)))
        self.names = [name for name, _, _ in self.fields]

    def read(self, obj: dict[str, Any], *, whole: bool) -> dict[str, Any]:
        """Converted values; a key Zoho left out is left out (`whole`: converted from None instead)."""
        out = {}
        # Plain loops: this runs for every column of every row and line the drain maps.
        for name, keys, convert in self.fields:
            for key in keys:
                if key in obj:
                    out[name] = convert(obj[key])
                    break
            else:
                if whole:
                    out[name] = convert(None)
        return out


def link_parents(
    instances: Sequence[models.Model],
    references: list[tuple[str, str, type[models.Model]]],
    *,
    child: Callable[[models.Model], str],
) -> list[parents.Missing]:
    """Fill each `<parent>_ref` from the parent's Zoho id: one query per parent type, NULL when absent.

    Returns the parents not stored yet (`child` names the row that waits), for sync.parents to
    remember: the parent's own apply then fills these references.
    """
    missing = []
    for attname, id_field, model in references:
        ids = {getattr(i, id_field) for i in instances} - {""}
        found = dict(model.objects.filter(zoho_id__any_of=ids).values_list("zoho_id", "pk")) if ids else {}
        table = instances[0]._meta.db_table if instances else ""
        for instance in instances:
            parent_id = getattr(instance, id_field)
            setattr(instance, attname, found.get(parent_id))
            if parent_id and parent_id not in found:
                missing.append(parents.Missing(parents.entity_of(model), parent_id, table, child(instance)))
    return missing


@dataclass(frozen=True)
class Lines:
    """Where a detail's lines are: the line model, the Zoho list key(s), renamed columns."""

    model: type[models.Model]
    keys: tuple[str, ...] = ("line_items",)
    renames: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Fields Zoho sends on each line that the mapping leaves unread on purpose (schema drift).
    unread: frozenset[str] = frozenset()

    def read(self, obj: dict[str, Any], columns: Columns) -> list[dict[str, Any]] | None:
        """The mapped lines, or None when the payload does not carry them (leave stored lines alone)."""
        key = next((k for k in self.keys if k in obj), None)
        if key is None:
            return None
        rows = obj[key]
        if rows in ("", None):
            return []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValidationFailed(f"{key} is not a list of objects")
        return [columns.read(r, whole=True) for r in rows]


def lock_objects(namespace: str, zoho_ids: Iterable[str]) -> None:
    """Serialise work on the same objects across workers, including objects not stored yet.

    SELECT … FOR UPDATE cannot lock a row that does not exist: two workers creating the same new
    object with different versions would both see "nothing stored" and the older could win. A
    transaction-scoped advisory lock per object, taken in sorted order (no deadlock between
    batches), closes that. SQLite serialises writers already.
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted(
        {
            int.from_bytes(hashlib.blake2b(f"{namespace}:{z}".encode(), digest_size=8).digest(), "big", signed=True)
            for z in zoho_ids
        }
    )
    if keys:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY 1) s", [keys]
            )


class Row:
    """An ERP row being decided: the model instance and its lines (mapped values) when known."""

    def __init__(self, handler: Handler, instance: models.Model, *, exists: bool):
        self.handler = handler
        self.instance = instance
        self.exists = exists
        self.lines: list[dict[str, Any]] | None = None
        self.lines_changed = False
        # The queue row whose payload is `instance.raw` as it is (no envelope around it), so the
        # database copies it instead of receiving it again (bulk.insert's `raw_from_queue`).
        self.raw_from_queue: int | None = None

    version = property(lambda self: self.instance.zoho_last_modified)
    content_hash = property(lambda self: self.instance.content_hash)
    is_summary = property(lambda self: self.instance.is_summary)
    deleted_at = property(lambda self: self.instance.deleted_at)

    def state(self) -> dict[str, Any]:
        out = {name: getattr(self.instance, name) for name in self.handler.columns.names}
        out["deleted_at"] = self.instance.deleted_at
        if self.handler.lines is not None:
            out["lines"] = self.lines
        return out

    def apply(self, change: Change, now: datetime) -> None:
        instance = self.instance
        for name, value in change.values.items():
            setattr(instance, name, value)
        instance.zoho_last_modified = highest(instance.zoho_last_modified, change.version)
        instance.content_hash = change.item.content_hash
        self._set_raw(change)
        instance.is_summary = change.summary
        instance.synced_at = now
        instance.deleted_at = None  # a revival (judge allowed it: strictly newer than the delete)
        if change.lines is not None and not change.summary:
            self.lines = change.lines
            self.lines_changed = True

    def tombstone(self, change: Change, now: datetime) -> None:
        instance = self.instance
        if not self.exists:  # a delete of an object never seen: keep it, so an older create stays out
            self._set_raw(change)
            instance.content_hash = change.item.content_hash
        instance.zoho_last_modified = highest(instance.zoho_last_modified, change.version)
        instance.deleted_at = now
        instance.synced_at = now

    def _set_raw(self, change: Change) -> None:
        self.instance.raw = change.obj
        self.raw_from_queue = change.item.pk if change.obj is change.item.payload else None


class Handler:
    """Applies the rows of one entity to its ERP model (and line model)."""

    def __init__(
        self,
        slug: str,
        model: type[models.Model],
        *,
        lines: Lines | None = None,
        renames: dict[str, tuple[str, ...]] | None = None,
        id_field: str = "",
        prefix: str = "",
        unread: frozenset[str] = frozenset(),
    ):
        self.entity = entities.get(slug)
        self.model = model
        self.id_field = id_field or self.entity.id_field
        self.prefix = prefix  # the queue object_id prefix this handler takes (stock)
        self.columns = Columns(model, renames or {})
        self.lines = lines
        self.unread = unread  # Zoho fields the mapping leaves unread on purpose (schema drift)
        # Objects locked under one name are one object: a contact is a customer or a vendor.
        self.lock_namespace = "erp_contacts" if self.entity.contact_type else model._meta.db_table
        if lines is not None:
            fk = next(f for f in lines.model._meta.concrete_fields if f.is_relation and f.related_model is model)
            self.line_fk = fk.attname
            self.line_columns = Columns(lines.model, lines.renames, skip={"position"})

    def __str__(self) -> str:
        return f"{self.entity.slug}{'/' + self.prefix if self.prefix else ''}"

    @cached_property
    def known_fields(self) -> schema_drift.Known:
        """Every Zoho field this handler reads or leaves unread on purpose; anything else is drift."""
        header = {key for _, keys, _ in self.columns.fields for key in keys} | {self.id_field} | self.unread
        if self.entity.contact_type:
            header.add("contact_type")  # read by sync.entities.locate, which files the contact
        if self.lines is None:
            return schema_drift.Known(frozenset(header))
        lines = {key for _, keys, _ in self.line_columns.fields for key in keys} | self.lines.unread
        return schema_drift.Known(frozenset(header | set(self.lines.keys)), self.lines.keys, frozenset(lines))

    def apply(self, items: Sequence[QueueItem], now: datetime) -> dict[int, ApplyOutcome]:
        changes = [self.read(item) for item in items]
        upserts = [(c.item.object_id, c.obj) for c in changes if not c.delete]
        schema_drift.observe(self.entity.slug, self.known_fields, upserts, now=now)
        records = self.load({c.zoho_id for c in changes}, now)
        outcomes, audits, touched = decide(changes, records, now)
        if touched:
            self.save(touched, now)
            # Dead letters these objects have now overtaken need no hand any more.
            ids = {id(record) for record in touched}
            written = {zoho_id: record.version for zoho_id, record in records.items() if id(record) in ids}
            queue.resolve_superseded(
                self.entity.slug, {self.prefix + z: v for z, v in written.items()}, by=RESOLVER, now=now
            )
            audits += self.after_apply(changes, outcomes, now)
        bulk.insert(AuditTrail, audits)
        return outcomes

    def after_apply(self, changes: list[Change], outcomes: dict[int, ApplyOutcome], now: datetime) -> list[AuditTrail]:
        """What else the applied changes move, with its audit rows (a contact leaving the other table)."""
        return []

    def stored_versions(self, zoho_ids: Iterable[str]) -> dict[str, datetime | None]:
        """The version each stored object holds (heal's check for overtaken dead letters)."""
        return dict(self.model.objects.filter(zoho_id__in=zoho_ids).values_list("zoho_id", "zoho_last_modified"))

    def read(self, item: QueueItem) -> Change:
        try:
            return self._read(item)
        except ValidationFailed as e:
            raise ValidationFailed(f"{item.entity} {item.object_id} (queue #{item.pk}): {e}") from None

    def _read(self, item: QueueItem) -> Change:
        zoho_id = item.object_id.removeprefix(self.prefix)
        if not isinstance(item.payload, dict):
            raise ValidationFailed("payload is not an object")
        obj = entities.locate(self.entity.slug, item.payload).obj
        # Here, on the one path every change takes (webhook, pull, replay, repair, rebuild): a
        # version that is there but cannot be trusted is refused, never read as "no version".
        problem = payloads.version_problem(obj, latest=payloads.latest_version(item.created_at))
        if problem:
            raise ValidationFailed(problem)
        if item.operation == QueueItem.Operation.DELETE:
            return Change(item, zoho_id, obj, {}, None)
        if values.ident(obj.get(self.id_field)) != zoho_id:
            raise ValidationFailed(f"{self.id_field} missing or not {zoho_id!r}")
        lines = None
        if self.lines is not None and not item.is_summary:
            lines = self.lines.read(obj, self.line_columns)
        return Change(item, zoho_id, obj, self.columns.read(obj, whole=False), lines)

    def load(self, zoho_ids: set[str], now: datetime) -> dict[str, Record]:
        lock_objects(self.lock_namespace, zoho_ids)
        stored = self.model.objects.select_for_update().filter(zoho_id__any_of=zoho_ids).order_by("zoho_id")
        records: dict[str, Record] = {r.zoho_id: Row(self, r, exists=True) for r in stored}
        if self.lines is not None and records:
            self._load_lines(records)
        for zoho_id in zoho_ids - records.keys():
            records[zoho_id] = Row(self, self.model(zoho_id=zoho_id, synced_at=now), exists=False)
        return records

    def _load_lines(self, records: dict[str, Row]) -> None:
        by_pk = {r.instance.pk: r for r in records.values()}
        for r in by_pk.values():
            r.lines = []
        stored = self.lines.model.objects.filter(**{f"{self.line_fk}__any_of": by_pk}).order_by(
            self.line_fk, "position"
        )
        for line in stored.values(self.line_fk, *self.line_columns.names):
            by_pk[line.pop(self.line_fk)].lines.append(line)

    def child(self, instance: models.Model) -> str:
        """How a waiting row is named to an operator: its entity and Zoho id."""
        return f"{self.entity.slug} {instance.zoho_id}"

    def save(self, rows: list[Row], now: datetime) -> None:
        instances = [r.instance for r in rows]
        missing = link_parents(instances, self.columns.parents, child=self.child)
        # Upsert on zoho_id: rows another transaction created meanwhile are updated, not duplicated.
        bulk.insert(self.model, instances, upsert_on="zoho_id", raw_from_queue=[r.raw_from_queue for r in rows])
        parents.fill(self.model, [i.zoho_id for i in instances])
        if self.lines is not None:
            missing += self._replace_lines([r for r in rows if r.lines_changed])
        parents.remember(missing, now=now)

    def _replace_lines(self, rows: list[Row]) -> list[parents.Missing]:
        if not rows:
            return []
        line_model = self.lines.model
        line_model.objects.filter(**{f"{self.line_fk}__any_of": [r.instance.pk for r in rows]}).delete()
        new = [
            line_model(**{self.line_fk: r.instance.pk, "position": i, **line})
            for r in rows
            for i, line in enumerate(r.lines)
        ]
        owners = {r.instance.pk: self.child(r.instance) for r in rows}
        missing = link_parents(new, self.line_columns.parents, child=lambda line: owners[getattr(line, self.line_fk)])
        bulk.insert(line_model, new)
        return missing
