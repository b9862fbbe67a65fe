"""Parents before children: a row applied before its parent gets its reference when the parent lands.

A child's apply fills `<parent>_ref` from the parent's Zoho id (sync.handlers.apply.link_parents).
When the parent is not stored yet, the batch records it in tds_parent_waits, one statement for the
whole batch, naming the child tables that wait. The parent's own apply then asks that table once
for the ids it wrote and, only for those awaited, updates just the tables named, through the
partial indexes on `<parent>_id WHERE <parent>_ref IS NULL AND <parent>_id <> ''` (erp migration
0005): a product batch never scans the line tables of five other entities.

A parent still missing after `parent_wait_minutes` is fetched from Zoho once, by `heal`, through
the Zoho client and its limiter, and queued with source `parent` on the one apply path. One Zoho
does not have (404) is marked `missing_in_zoho_at` and listed by reconciliation's drift report.

Customers and vendors are both contacts: a contact awaited as a customer that lands as a vendor
answers the wait too (the invoice's customer reference stays empty, rightly: Zoho files that
contact as a vendor).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.apps import apps
from django.db import connection, models, transaction
from django.db.models import OuterRef, Subquery

from sync import entities
from sync.config_keys import PARENT_WAIT_MINUTES
from sync.models import ParentWait, QueueItem
from sync.payloads import content_hash, latest_version, trusted_version
from sync.queue import enqueue
from sync.zoho import limiter
from sync.zoho.client import ZohoClient
from sync.zoho.errors import ZohoError
from tdscore import config

# Waits named in one reconciliation report, at most (the count is always whole).
REPORTED = 100


@dataclass(frozen=True)
class Link:
    """A child table's reference to a parent: `<parent>_id` (Zoho's id) and `<parent>_ref` beside it."""

    model: type[models.Model]
    ref: str  # the foreign key's name, `customer_ref`
    id_field: str  # `customer_id`
    parent: str  # the parent's entity slug

    @property
    def table(self) -> str:
        return self.model._meta.db_table


def entity_of(model: type[models.Model]) -> str:
    """The entity slug whose rows `model` holds (a parent is awaited under it)."""
    return _slugs()[model]


@functools.cache
def _slugs() -> dict[type[models.Model], str]:
    return {apps.get_model(e.erp_model): e.slug for e in entities.ENTITIES.values()}


@functools.cache
def links() -> dict[str, Link]:
    """Every child table's parent reference, by table, read from the ERP models."""
    out = {}
    for model in apps.get_app_config("erp").get_models():
        for f in model._meta.concrete_fields:
            if f.is_relation and f.name.endswith("_ref"):
                out[model._meta.db_table] = Link(
                    model, f.name, f.name.removesuffix("_ref") + "_id", entity_of(f.related_model)
                )
    return out


def awaited_as(model: type[models.Model]) -> tuple[str, ...]:
    """The entity slugs under which rows of `model` may be awaited: none unless it is someone's parent.

    A contact answers waits under both contact entities (it may have moved between them).
    """
    slug = _slugs().get(model)
    if slug is None or slug not in {link.parent for link in links().values()}:
        return ()
    entity = entities.get(slug)
    if entity.contact_type:
        return tuple(sorted(e.slug for e in entities.ENTITIES.values() if e.contact_type))
    return (slug,)


# --- A child batch: remember what it waits for ---------------------------------------------------


@dataclass(frozen=True)
class Missing:
    parent: str
    parent_id: str
    table: str
    child: str  # which child, for the operator's "why": `invoices 4815…`


def remember(missing: Iterable[Missing], *, now: datetime) -> None:
    """Record every awaited parent of a batch in one statement; a parent awaited already gains the tables."""
    rows: dict[tuple[str, str], dict] = {}
    for m in missing:
        row = rows.setdefault((m.parent, m.parent_id), {"e": m.parent, "i": m.parent_id, "t": [], "x": m.child})
        if m.table not in row["t"]:
            row["t"].append(m.table)
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_UPSERT_POSTGRESQL, [now, orjson.dumps(list(rows.values())).decode()])
        else:
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
            params = [v for r in rows.values() for v in (r["e"], r["i"], orjson.dumps(r["t"]).decode(), r["x"], now)]
            cursor.execute(_UPSERT_SQLITE.format(values=values), params)


_UPSERT_POSTGRESQL = """
INSERT INTO tds_parent_waits (parent_entity, parent_id, child_tables, example_child, since)
SELECT r.e, r.i, r.t, r.x, %s FROM jsonb_to_recordset(%s::jsonb) AS r(e text, i text, t jsonb, x text)
ON CONFLICT (parent_entity, parent_id) DO UPDATE SET child_tables = (
    SELECT jsonb_agg(DISTINCT v ORDER BY v)
    FROM jsonb_array_elements(tds_parent_waits.child_tables || EXCLUDED.child_tables) AS v
)
"""
_UPSERT_SQLITE = """
INSERT INTO tds_parent_waits (parent_entity, parent_id, child_tables, example_child, since) VALUES {values}
ON CONFLICT (parent_entity, parent_id) DO UPDATE SET child_tables = (
    SELECT json_group_array(value) FROM (
        SELECT value FROM json_each(tds_parent_waits.child_tables)
        UNION SELECT value FROM json_each(excluded.child_tables)
    )
)
"""


# --- A parent batch: fill the children that waited -----------------------------------------------


def fill(model: type[models.Model], zoho_ids: Iterable[str]) -> int:
    """The parent rows `zoho_ids` of `model` are stored: fill the references that waited for them.

    One indexed query on tds_parent_waits; then, only for awaited ids, one UPDATE per child table
    named; then the wait rows go. Returns the waits answered. Call inside the parent's transaction.
    """
    slugs = awaited_as(model)
    ids = list(zoho_ids)
    if not slugs or not ids:
        return 0
    waits = list(
        ParentWait.objects.filter(parent_entity__in=slugs, parent_id__any_of=ids).values_list(
            "pk", "parent_entity", "parent_id", "child_tables"
        )
    )
    if not waits:
        return 0
    own = entity_of(model)
    by_table: dict[str, set[str]] = defaultdict(set)
    for _, parent, parent_id, tables in waits:
        for table in tables:
            if parent == own and table in links():
                by_table[table].add(parent_id)
    for table, parent_ids in sorted(by_table.items()):
        _fill_table(links()[table], model, parent_ids)
    ParentWait.objects.filter(pk__in=[pk for pk, *_ in waits]).delete()
    return len(waits)


def _fill_table(link: Link, parent: type[models.Model], parent_ids: set[str]) -> None:
    _waiting(link).filter(**{f"{link.id_field}__any_of": parent_ids}).update(**{link.ref: _parent_pk(link, parent)})


def _waiting(link: Link) -> models.QuerySet:
    # The partial index's predicate (erp: `<table>_awaits`): only children still waiting.
    return link.model.objects.filter(**{f"{link.ref}__isnull": True}).exclude(**{link.id_field: ""})


def _parent_pk(link: Link, parent: type[models.Model]) -> Subquery:
    return Subquery(parent.objects.filter(zoho_id=OuterRef(link.id_field)).values("pk")[:1])


def settle() -> int:
    """Fill every reference whose parent is stored by now, whatever the wait rows say.

    The safety net behind fill(): a child batch and its parent's batch that commit at the same
    moment can each miss the other (the parent reads the waits before the child's commit). Each
    statement reads only a partial index of waiting rows, so heal runs it cheaply.
    """
    filled = 0
    for link in links().values():
        parent = apps.get_model(entities.get(link.parent).erp_model)
        stored = parent.objects.filter(zoho_id=OuterRef(link.id_field))
        filled += _waiting(link).filter(models.Exists(stored)).update(**{link.ref: _parent_pk(link, parent)})
    return filled


# --- heal: the one fetch of a parent that stays missing ------------------------------------------


@dataclass
class Fetched:
    queued: int = 0
    missing_in_zoho: int = 0
    answered: int = 0  # found stored after all: the wait was written as the parent landed
    errors: list[str] = field(default_factory=list)


def overdue(now: datetime) -> models.QuerySet:
    """Waits older than `parent_wait_minutes` with no fetch yet."""
    cutoff = now - timedelta(minutes=config.get(PARENT_WAIT_MINUTES))
    return ParentWait.objects.filter(since__lte=cutoff, fetch_queued_at__isnull=True).order_by("since", "pk")


def fetch_overdue(*, now: datetime) -> Fetched:
    """Fetch each overdue parent from Zoho once and queue it (source `parent`), as the budget allows.

    A wait whose parent is stored by now (its child's batch and the parent's crossed) is answered
    here without a call. The fetch is marked before the call (`fetch_queued_at`, a conditional
    update), so two heals never fetch one parent twice; a call Zoho could not answer (outage,
    budget) clears the mark for the next heal.
    """
    result = Fetched()
    waits = list(overdue(now))
    for slug, group in _by_parent(waits).items():
        model = apps.get_model(entities.get(slug).erp_model)
        stored = set(
            model.objects.filter(zoho_id__any_of=[w.parent_id for w in group]).values_list("zoho_id", flat=True)
        )
        if stored:
            with transaction.atomic():
                result.answered += fill(model, stored)
        waits = [w for w in waits if not (w.parent_entity == slug and w.parent_id in stored)]
    if not waits:
        return result
    allowance = _allowance(now)
    with ZohoClient() as client:
        for wait in waits[:allowance]:
            if not _fetch(client, wait, now=now, result=result):
                break
    return result


def _by_parent(waits: list[ParentWait]) -> dict[str, list[ParentWait]]:
    out: dict[str, list[ParentWait]] = defaultdict(list)
    for wait in waits:
        out[wait.parent_entity].append(wait)
    return out


def _allowance(now: datetime) -> int:
    """Calls this heal may make without waiting for the limiter: this minute's and today's left."""
    usage = limiter.usage(now)
    return max(min(usage.remaining_minute, usage.remaining_today), 0)


def _fetch(client: ZohoClient, wait: ParentWait, *, now: datetime, result: Fetched) -> bool:
    """One parent; False when Zoho cannot answer now (stop the round, try at the next heal)."""
    if not ParentWait.objects.filter(pk=wait.pk, fetch_queued_at__isnull=True).update(fetch_queued_at=now):
        return True  # another heal took it
    try:
        obj = client.get(wait.parent_entity, wait.parent_id)
    except ZohoError as exc:
        if exc.permanent:
            ParentWait.objects.filter(pk=wait.pk).update(missing_in_zoho_at=now)
            result.missing_in_zoho += 1
            return True
        ParentWait.objects.filter(pk=wait.pk).update(fetch_queued_at=None)
        result.errors.append(f"{wait.parent_entity} {wait.parent_id}: {exc}")
        return False
    located = entities.locate(wait.parent_entity, obj)
    with transaction.atomic():
        enqueue(
            entity=located.entity.slug,
            object_id=located.object_id,
            payload=located.obj,
            content_hash=content_hash(located.obj),
            version=trusted_version(located.obj, latest=latest_version(now)),
            source=QueueItem.Source.PARENT,
            now=now,
        )
    result.queued += 1
    return True


# --- What the watchers read ----------------------------------------------------------------------


def waiting_count() -> int:
    """Parents some stored row references and that are not stored yet."""
    return ParentWait.objects.count()


def missing_in_zoho(slug: str) -> dict:
    """For reconciliation's report: awaited parents of `slug` that Zoho answered 404 for."""
    rows = ParentWait.objects.filter(parent_entity=slug, missing_in_zoho_at__isnull=False).order_by("parent_id")
    return {
        "count": rows.count(),
        "parents": [
            {
                "parent_id": w.parent_id,
                "child_tables": w.child_tables,
                "example_child": w.example_child,
                "since": w.since.isoformat(),
                "missing_in_zoho_at": w.missing_in_zoho_at.isoformat(),
            }
            for w in rows[:REPORTED]
        ],
    }
