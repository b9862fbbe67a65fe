"""Reconciliation: compare what Zoho lists with what the ERP holds, report drift, optionally repair.

Zoho has no count endpoint, so the cheapest complete summary of an entity is its list scan itself
(200 ids and `last_modified_time`s a call): a second, filtered pass over differing buckets would
cost more calls than it saves. Both sides are grouped into month buckets by the document's `date`
(documents, payments, adjustments) or else its `created_time`: both are fixed at creation, so an
edit never moves a record between buckets and a bucket's drift names what really differs.

Drift, per bucket: `missing` (in Zoho, no ERP row), `outdated` (Zoho newer), `deleted_in_zoho`
(alive in the ERP, gone from Zoho), `tombstoned_alive` (deleted in the ERP, alive in Zoho).
`repair` queues fixes with source `reconcile` through the one apply path: the Zoho row (or its
detail, for documents with lines, as the budget allows) or a delete.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from sync import budget, entities, parents, pull, run_lifecycle
from sync.entities import Entity
from sync.models import QueueItem, SyncRun
from sync.payloads import content_hash, latest_version, trusted_version, version_of
from sync.queue import enqueue
from sync.zoho import limiter
from sync.zoho.client import ZohoClient
from tdscore.actions import Actor

KINDS = ("missing", "outdated", "deleted_in_zoho", "tombstoned_alive")
REPORT_IDS = 100  # ids listed per bucket and kind; counts are always whole
UNDATED = "undated"


def reconcile_entity(
    slug: str,
    *,
    now: datetime,
    repair: bool = False,
    trigger: str = "manual",
    client: ZohoClient | None = None,
    actor: Actor | None = None,
    on_page: Callable[[SyncRun], None] | None = None,
) -> SyncRun:
    run = pull.start_run(slug, SyncRun.RunType.RECONCILIATION, now=now, trigger=trigger, actor=actor)
    if run.status == SyncRun.Status.PENDING:
        run = execute(run.pk, repair=repair, client=client, on_page=on_page)
    return run


def execute(
    run_id: int,
    *,
    repair: bool,
    client: ZohoClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    in_cluster: bool = False,
    on_page: Callable[[SyncRun], None] | None = None,
) -> SyncRun:
    """As pull.execute: `in_cluster`, a slot and at most a short wait in the worker; `on_page` is
    told after each page of Zoho's list is read (progress output)."""
    run = run_lifecycle.claim(run_id, now=timezone.now(), slots=run_lifecycle.run_slots() if in_cluster else None)
    if run is None:
        return SyncRun.objects.get(pk=run_id)
    entity = entities.get(run.entity)
    calls = pull.Calls(run, client or ZohoClient(), sleep=sleep, in_cluster=in_cluster)
    try:
        zoho = zoho_side(calls, entity, on_page=on_page)
        report = compare(entity, zoho, erp_side(entity))
        if repair:
            report["queued"] = queue_repairs(calls, entity, report, zoho)
    except pull.Deferred as exc:
        return run_lifecycle.finish(run, SyncRun.Status.DEFERRED, now=timezone.now(), error=str(exc))
    except pull.MustWait as exc:
        return pull.wait_or_fail(run, exc)
    except Exception as exc:
        return run_lifecycle.fail(run, exc, now=timezone.now())
    report["repair"] = repair
    report["parents_missing_in_zoho"] = parents.missing_in_zoho(entity.slug)
    for bucket in report["buckets"].values():
        bucket.pop("_ids", None)
    run.drift_report = report
    run.save(update_fields=["drift_report"])
    remember_size(entity.slug, len(zoho))
    return run_lifecycle.finish(run, SyncRun.Status.COMPLETED, now=timezone.now())


# --- The two sides ----------------------------------------------------------------------------


def zoho_side(
    calls: pull.Calls, entity: Entity, *, on_page: Callable[[SyncRun], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Every list row of the entity, by Zoho id (the stock entity: its adjustments)."""
    rows: dict[str, dict[str, Any]] = {}
    id_field = entity.id_field
    for page in pull.read_pages(calls, entity):
        for row in page.rows:
            if row.get(id_field) not in (None, ""):
                rows[str(row[id_field])] = row
        run_lifecycle.heartbeat(calls.run, now=timezone.now(), fetched=len(page.rows))
        if on_page:
            on_page(calls.run)
    return rows


def erp_side(entity: Entity) -> dict[str, tuple[datetime | None, bool, str]]:
    """zoho_id → (version, tombstoned, bucket) for every ERP row of the entity."""
    model = apps.get_model(entity.erp_model)
    dated = any(f.name == "date" for f in model._meta.concrete_fields)
    column = "date" if dated else "raw__created_time"
    out = {}
    for zoho_id, version, deleted_at, when in model.objects.values_list(
        "zoho_id", "zoho_last_modified", "deleted_at", column
    ).iterator(chunk_size=5000):
        out[zoho_id] = (version, deleted_at is not None, month(when))
    return out


def month(value: Any) -> str:
    if value in (None, ""):
        return UNDATED
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text[:7] if len(text) >= 7 and text[4] == "-" else UNDATED


def bucket_of(row: dict[str, Any]) -> str:
    return month(row.get("date") or row.get("created_time"))


# --- The comparison ---------------------------------------------------------------------------


def compare(entity: Entity, zoho: dict[str, dict[str, Any]], erp: dict[str, tuple]) -> dict[str, Any]:
    """The drift report: totals and, for each month bucket that differs, counts and ids by kind."""
    buckets: dict[str, dict[str, Any]] = defaultdict(lambda: {"zoho": 0, "erp": 0, "_ids": defaultdict(list)})
    for zoho_id, row in zoho.items():
        bucket = buckets[bucket_of(row)]
        bucket["zoho"] += 1
        stored = erp.get(zoho_id)
        if stored is None:
            bucket["_ids"]["missing"].append(zoho_id)
            continue
        version, tombstoned, _ = stored
        if tombstoned:
            bucket["_ids"]["tombstoned_alive"].append(zoho_id)
            continue
        zoho_version = version_of(row)
        if zoho_version is not None and (version is None or zoho_version > version):
            bucket["_ids"]["outdated"].append(zoho_id)
    for zoho_id, (_, tombstoned, when) in erp.items():
        if tombstoned:
            continue
        buckets[when]["erp"] += 1
        if zoho_id not in zoho:
            buckets[when]["_ids"]["deleted_in_zoho"].append(zoho_id)
    totals = dict.fromkeys(KINDS, 0)
    report_buckets = {}
    for name, bucket in sorted(buckets.items()):
        ids = bucket["_ids"]
        if not any(ids.values()) and bucket["zoho"] == bucket["erp"]:
            continue
        entry = {"zoho": bucket["zoho"], "erp": bucket["erp"], "_ids": ids}
        for kind in KINDS:
            totals[kind] += len(ids[kind])
            if ids[kind]:
                entry[kind] = {"count": len(ids[kind]), "ids": sorted(ids[kind])[:REPORT_IDS]}
        report_buckets[name] = entry
    return {
        "entity": entity.slug,
        "zoho": len(zoho),
        "erp": sum(1 for _, tombstoned, _ in erp.values() if not tombstoned),
        "drift": sum(totals.values()),
        "totals": totals,
        "buckets": report_buckets,
    }


# --- Repairs ----------------------------------------------------------------------------------


def queue_repairs(calls: pull.Calls, entity: Entity, report: dict[str, Any], zoho: dict[str, dict[str, Any]]) -> int:
    """Queue every fix (source `reconcile`); details for documents with lines as the budget allows."""
    ids = {kind: [i for b in report["buckets"].values() for i in b["_ids"][kind]] for kind in KINDS}
    revive = set(ids["tombstoned_alive"])
    upserts = ids["missing"] + ids["outdated"] + ids["tombstoned_alive"]
    allowance = pull.Details(calls, max(0, budget.day_allowance(limiter.usage(timezone.now()))))
    details = allowance.documents(entity, upserts) if entity.has_lines else {}
    now = timezone.now()
    with transaction.atomic():
        for zoho_id in upserts:
            obj = details.get(zoho_id) or zoho[zoho_id]
            # Alive in Zoho as read at `now`: a tombstone carries the delete's version, usually newer
            # than the row's last_modified_time, so the observation time is what orders the revival
            # after the delete (the apply path revives only on a strictly newer version).
            version = now if zoho_id in revive else trusted_version(obj, latest=latest_version(now))
            repair(entity, obj, version=version, is_summary=zoho_id not in details, run=calls.run, now=now)
        for zoho_id in ids["deleted_in_zoho"]:
            repair(entity, {entity.id_field: zoho_id}, version=None, delete=True, run=calls.run, now=now)
    queued = len(upserts) + len(ids["deleted_in_zoho"])
    run_lifecycle.heartbeat(calls.run, now=now, queued=queued)
    return queued


def repair(
    entity: Entity,
    obj: dict[str, Any],
    *,
    version: datetime | None,
    run: SyncRun,
    now: datetime,
    is_summary: bool = False,
    delete: bool = False,
) -> None:
    located = entities.locate(entity.slug, obj)
    enqueue(
        entity=located.entity.slug,
        object_id=located.object_id,
        payload=located.obj,
        content_hash=content_hash(located.obj),
        version=version,
        source=QueueItem.Source.RECONCILE,
        now=now,
        operation=QueueItem.Operation.DELETE if delete else QueueItem.Operation.UPSERT,
        is_summary=is_summary and not delete,
        sync_run=run,
        requested_by=run.started_by,
    )


def remember_size(slug: str, records: int) -> None:
    """A reconciliation counts every record: the planner's estimate of the next full scan."""
    cursor = run_lifecycle.cursor(slug, SyncRun.RunType.FULL)
    cursor.checkpoint = {**cursor.checkpoint, "records": records}
    cursor.save(update_fields=["checkpoint"])
