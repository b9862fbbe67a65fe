"""Pull runs: read Zoho lists page by page and queue every row (source `pull`).

- incremental, where Zoho filters by `last_modified_time` (Entity.modified_filter): rows modified
  since the cursor minus `pull_overlap_seconds`, oldest first;
- incremental for contacts, which Zoho cannot filter but can sort: newest first, stopping at the
  first row older than the cursor;
- full (on demand, weekly, and wherever incremental is impossible): every row;
- stock: Inventory items' `locations[]` snapshots (`item:<id>`) and the adjustments list.

List rows are summaries; documents with lines also get a detail fetch, new and changed ones
first, as far as the budget allows (sync.budget). After each page is queued the run checkpoints
(page, newest `last_modified_time` seen) on itself and its cursor, in the same transaction as the
queue rows, so a killed run resumes where it stopped. Rows are never written to ERP tables here:
the queue's one apply path does that.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from django.apps import apps
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from erp.models import StockLevel
from sync import budget, entities, runs
from sync.entities import Entity
from sync.models import QueueItem, SyncRun
from sync.payloads import parse_zoho_time, version_of
from sync.queue import enqueue_many
from sync.zoho import limiter
from sync.zoho.client import ZohoClient, ZohoError
from tdscore import config
from tdscore.logging import add_log_context, logs_as

T = TypeVar("T")

SORT_ASCENDING = {"sort_column": "last_modified_time", "sort_order": "A"}
SORT_DESCENDING = {"sort_column": "last_modified_time", "sort_order": "D"}
# A 429, a 5xx or a dropped connection the client gave up on: wait and try the same call again,
# for at most this long in all, before the run fails (and a later run resumes from its checkpoint).
TRANSIENT_WINDOW = timedelta(minutes=15)
MINUTE_POLL_SECONDS = 0.5


class Deferred(Exception):
    """The day's budget ran out mid-run: stop, keep the checkpoint, resume after the reset."""


class Stopped(Exception):
    """Asked to stop (SIGTERM) between pages."""


def run_type_for(entity: Entity, mode: str) -> str:
    """The run type a requested mode (full, incremental or reconciliation) becomes for this entity."""
    if mode == SyncRun.RunType.RECONCILIATION:
        return SyncRun.RunType.RECONCILIATION
    if entity.slug == "stock":
        return SyncRun.RunType.STOCK
    if mode == SyncRun.RunType.INCREMENTAL and incremental_possible(entity):
        return SyncRun.RunType.INCREMENTAL
    return SyncRun.RunType.FULL


def incremental_possible(entity: Entity) -> bool:
    # zoho/README.md: filtered lists where Zoho has the filter; contacts "can be sorted by
    # last_modified_time". Everything else is read whole (weekly full, nightly reconciliation).
    return entity.modified_filter or bool(entity.contact_type)


# --- Starting runs ----------------------------------------------------------------------------


def start_run(slug: str, mode: str, *, now: datetime, trigger: str) -> SyncRun:
    """Plan a run and record it pending, or deferred with the reason; raise RunRefused otherwise.

    The entity lock makes the overlap check and the insert one step, so two starters (a schedule
    and an operator) never both get a run.
    """
    entity = entities.get(slug)
    run_type = run_type_for(entity, mode)
    with transaction.atomic():
        runs.lock_entity(slug)
        active = runs.active_run(slug, now=now)
        if active is not None:
            raise runs.RunRefused(
                f"overlap: {active.run_type} run #{active.pk} of {slug} is {active.status} "
                f"(heartbeat {active.heartbeat_at or active.created_at:%H:%M:%S})"
            )
        plan = planned_calls(entity, run_type)
        decision = budget.decide(plan, limiter.usage(now))
        if decision.action == budget.Action.REFUSE:
            raise runs.RunRefused(f"budget: {decision.reason}")
        if decision.action == budget.Action.DEFER:
            return runs.create_deferred(
                slug, run_type, now=now, trigger=trigger, reason=decision.reason, estimated_calls=plan.total
            )
        return runs.create(slug, run_type, now=now, trigger=trigger, estimated_calls=plan.total)


def planned_calls(entity: Entity, run_type: str) -> budget.Estimate:
    """Estimate from what the last runs saw (records in a full scan, changes in an incremental)."""
    stats = runs.cursor(entity.slug, SyncRun.RunType.FULL).checkpoint
    changed = runs.cursor(entity.slug, SyncRun.RunType.INCREMENTAL).checkpoint.get("changed", 0)
    if run_type == SyncRun.RunType.STOCK:
        stats = runs.cursor(entity.slug, SyncRun.RunType.STOCK).checkpoint
        changed = stats.get("changed", 0)
    records = stats.get("records", 0)
    if run_type == SyncRun.RunType.FULL and not stats.get("records"):
        changed = 0  # never scanned: one page to start; the run checks the budget before every call
    elif run_type == SyncRun.RunType.FULL:
        changed = min(changed, records)
    return budget.estimate(entity, run_type, records=records, changed=changed, adjustments=stats.get("adjustments", 0))


def slugs_for(entity: str, mode: str) -> list[str]:
    """`all` for a mode: every entity for full scans, the cheap ones for incremental pulls."""
    if entity != "all":
        return [entities.get(entity).slug]
    if mode == SyncRun.RunType.INCREMENTAL:
        return [e.slug for e in entities.ENTITIES.values() if incremental_possible(e)]
    return list(entities.ENTITIES)


def start_runs(slugs: list[str], mode: str, *, now: datetime, trigger: str) -> tuple[list[SyncRun], dict[str, str]]:
    """Start a run per entity: the runs recorded (pending or deferred) and the refusals by entity."""
    started, refused = [], {}
    for slug in slugs:
        try:
            started.append(start_run(slug, mode, now=now, trigger=trigger))
        except runs.RunRefused as exc:
            refused[slug] = str(exc)
    return started, refused


def pull_entity(slug: str, mode: str, *, now: datetime, trigger: str = "manual", **options: Any) -> SyncRun:
    """Start and execute one run in this process (commands, tasks, tests); `options` go to execute()."""
    run = start_run(slug, mode, now=now, trigger=trigger)
    if run.status == SyncRun.Status.PENDING:
        run = execute(run.pk, **options)
    return run


# --- Executing runs ---------------------------------------------------------------------------


@logs_as(run="run_id")
def execute(
    run_id: int,
    *,
    client: ZohoClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_page: Callable[[SyncRun], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> SyncRun:
    """pending → running → completed | failed | deferred. Returns the run as it ended.

    `on_page` is told after each page is queued (progress output); `should_stop` is asked after
    each page (SIGTERM): a stopped run fails with its checkpoint kept, so the next one resumes.
    """
    now = timezone.now()
    run = runs.claim(run_id, now=now)
    if run is None:
        return SyncRun.objects.get(pk=run_id)
    add_log_context(entity=run.entity)
    puller = Puller(run, client or ZohoClient(), sleep=sleep, on_page=on_page, should_stop=should_stop)
    try:
        puller.pull()
    except Deferred as exc:
        return runs.finish(run, SyncRun.Status.DEFERRED, now=timezone.now(), error=str(exc))
    except runs.LostLock as exc:
        runs.log(run, str(exc), level="warning")
        return SyncRun.objects.get(pk=run_id)
    except Exception as exc:
        return runs.finish(run, SyncRun.Status.FAILED, now=timezone.now(), error=f"{type(exc).__name__}: {exc}")
    puller.complete()
    return runs.finish(run, SyncRun.Status.COMPLETED, now=timezone.now())


@dataclass
class Page:
    rows: list[dict[str, Any]]
    has_more: bool


@dataclass
class Puller:
    run: SyncRun
    client: ZohoClient
    sleep: Callable[[float], None] = time.sleep
    on_page: Callable[[SyncRun], None] | None = None
    should_stop: Callable[[], bool] = lambda: False
    state: dict[str, Any] = field(default_factory=dict)
    detail_allowance: int = 0

    def __post_init__(self) -> None:
        self.entity = entities.get(self.run.entity)
        resume = runs.cursor(self.run.entity, self.run.run_type).checkpoint.get("resume")
        self.state = dict(resume) if resume else self.fresh_state()
        if resume:
            runs.log(self.run, f"resuming from {resume}", resume=resume)
            if self.entity.modified_filter and resume.get("max_modified"):
                # Oldest first: everything before the newest row seen is done. Reading again from
                # it (inclusive) rather than from a page number loses nothing when rows were
                # edited meanwhile and moved between pages.
                self.state.update(since=resume["max_modified"], page=0)
        usage = limiter.usage(timezone.now())
        self.detail_allowance = max(
            0, budget.day_allowance(usage) - planned_calls(self.entity, self.run.run_type).list_calls
        )

    def fresh_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"page": 0, "max_modified": None, "rows": 0, "details": 0, "details_left": 0}
        if self.run.run_type == SyncRun.RunType.INCREMENTAL:
            watermark = newest_watermark(self.entity.slug)
            if watermark is not None:
                state["since"] = (watermark - timedelta(seconds=config.get("pull_overlap_seconds"))).isoformat()
        if self.run.run_type == SyncRun.RunType.STOCK:
            state["phase"] = "items"
        return state

    # The walk over list pages. -----------------------------------------------------------------

    def pull(self) -> None:
        if self.run.run_type != SyncRun.RunType.STOCK:
            self.walk(self.entity, self.documents)
            return
        if self.state.get("phase") == "items":
            self.walk(entities.get("products"), self.stock_snapshots)
            self.state.update(phase="adjustments", page=0, max_modified=None)
        self.walk(self.entity, self.documents)

    def walk(self, source: Entity, prepare: Callable[[list[dict[str, Any]]], list[tuple[dict, bool]]]) -> None:
        """Each page: pick its rows, fetch what they need, queue them and checkpoint, in one commit."""
        for page in self.pages(source):
            rows = self.fresh_rows(page.rows)
            prepared = prepare(rows)
            now = timezone.now()
            with transaction.atomic():
                queued = self.queue(prepared, now=now)
                self.state["rows"] += len(page.rows)
                self.state["max_modified"] = newest(self.state["max_modified"], page.rows)
                runs.heartbeat(self.run, now=now, fetched=len(page.rows), queued=queued)
                runs.save_checkpoint(self.run, self.state, now=now)
            if self.on_page:
                self.on_page(self.run)
            if self.should_stop():
                raise Stopped(f"stopped after page {self.state['page']}; the next run resumes from there")
            if not page.has_more or len(rows) < len(page.rows):
                return  # the last page, or (newest first) rows older than the cursor

    def documents(self, rows: list[dict[str, Any]]) -> list[tuple[dict, bool]]:
        """List rows as summaries, or the detail instead where a document with lines needs one."""
        wanted = needing_detail(self.entity, rows) if self.entity.has_lines else []
        details = self.details(self.entity, wanted)
        prepared = []
        for row in rows:
            detail = details.get(str(row.get(self.entity.id_field)))
            prepared.append((detail, False) if detail else (row, True))
        return prepared

    def stock_snapshots(self, rows: list[dict[str, Any]]) -> list[tuple[dict, bool]]:
        """Item details (with `locations[]`) for items whose total stock differs from the ERP's."""
        details = self.details(entities.get("products"), stock_changed(rows))
        return [(detail, False) for detail in details.values()]

    def pages(self, source: Entity) -> Iterator[Page]:
        while True:
            number = self.state["page"] + 1
            since, params = self.query()
            result = self.call(
                partial(
                    self.client.list_page,
                    source,
                    page=number,
                    modified_since=since,
                    params=params,
                    per_page=budget.page_size(),
                )
            )
            self.state["page"] = number
            yield Page(list(result.rows), bool(result.has_more))

    def query(self) -> tuple[datetime | None, dict[str, str]]:
        """The list's filter and order for this run: see the module docstring."""
        since = parse_zoho_time(self.state.get("since"))
        if self.entity.contact_type and self.run.run_type == SyncRun.RunType.INCREMENTAL:
            return None, dict(SORT_DESCENDING)
        if self.entity.modified_filter or self.run.run_type == SyncRun.RunType.STOCK:
            return since, dict(SORT_ASCENDING)
        return None, dict(SORT_ASCENDING) if self.entity.contact_type else {}

    def fresh_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Newest-first (contacts) incremental pages end at the first row older than the cursor."""
        since = parse_zoho_time(self.state.get("since"))
        if since is None or not (self.entity.contact_type and self.run.run_type == SyncRun.RunType.INCREMENTAL):
            return rows
        fresh = []
        for row in rows:
            version = version_of(row)
            if version is not None and version < since:
                break
            fresh.append(row)
        return fresh

    # Details for documents with lines. ---------------------------------------------------------

    def details(self, source: Entity, wanted: list[str]) -> dict[str, dict[str, Any]]:
        """Fetch details in `wanted` order (new before changed) while the budget allows."""
        fetched: dict[str, dict[str, Any]] = {}
        for done, zoho_id in enumerate(wanted):
            if self.detail_allowance <= 0:
                self.state["details_left"] += len(wanted) - done
                break
            self.detail_allowance -= 1
            self.state["details"] += 1
            try:
                fetched[zoho_id] = self.call(partial(self.client.get, source, zoho_id))
            except ZohoError as exc:
                if exc.kind != "not_found":
                    raise
                # Deleted between the list and the detail: the summary is queued; a webhook or
                # reconciliation brings the delete.
        return fetched

    # Calls. --------------------------------------------------------------------------------------

    def call(self, fn: Callable[[], T]) -> T:
        """One Zoho call within the budget: pace to the minute allowance, wait out transient errors."""
        give_up_at = timezone.now() + TRANSIENT_WINDOW
        for attempt in itertools.count():
            self.pace()
            try:
                result = fn()
            except ZohoError as exc:
                # Refused before the wire (breaker open, no limiter slot): no call to count.
                reached_zoho = exc.status is not None or exc.kind == "network"
                runs.heartbeat(self.run, now=timezone.now(), calls=int(reached_zoho))
                wait = self.transient_wait(exc, attempt, give_up_at)
                runs.log(self.run, f"Zoho answered {exc!r}; trying again in {wait:.1f} s", level="warning")
                self.sleep(wait)
                continue
            runs.heartbeat(self.run, now=timezone.now(), calls=1)
            return result

    def transient_wait(self, exc: ZohoError, attempt: int, give_up_at: datetime) -> float:
        """Seconds to wait before trying again, or raise: Deferred for the day's budget, else exc."""
        if exc.kind in ("budget", "daily_limit"):
            raise Deferred(f"daily budget: {exc}") from exc
        if exc.permanent or exc.kind in ("auth", "scope"):
            raise exc
        wait = exc.retry_after if exc.retry_after is not None else min(2.0**attempt, 30.0)
        if timezone.now() + timedelta(seconds=wait) > give_up_at:
            raise exc
        return min(wait, 60.0)

    def pace(self) -> None:
        """Keep the reserve: no call when the day's or this minute's allowance is spent."""
        while True:
            usage = limiter.usage(timezone.now())
            if budget.day_allowance(usage) <= 0:
                raise Deferred(
                    f"daily budget: {usage.calls_today} of {usage.daily_cap} calls used, the rest is the "
                    f"reserve; resumes from page {self.state['page'] + 1} after {usage.reset_at:%H:%M} UTC"
                )
            if budget.minute_allowance(usage) > 0:
                return
            runs.heartbeat(self.run, now=timezone.now())
            self.sleep(MINUTE_POLL_SECONDS)

    # Queue rows and the cursor. ------------------------------------------------------------------

    def queue(self, prepared: list[tuple[dict, bool]], *, now: datetime) -> int:
        rows = []
        for obj, is_summary in prepared:
            located = entities.locate(self.entity.slug, obj)
            if located.object_id is None:
                runs.log(self.run, "a list row without its id was skipped", level="warning", row=obj)
                continue
            rows.append(
                QueueItem(
                    entity=located.entity.slug,
                    object_id=located.object_id,
                    payload=located.obj,  # enqueue_many hashes it as it encodes it
                    version=version_of(located.obj),
                    source=QueueItem.Source.PULL,
                    is_summary=is_summary,
                    sync_run_id=self.run.pk,
                )
            )
        return enqueue_many(rows, now=now)

    def complete(self) -> None:
        """Move the cursor: watermark, the stats the planner reads, and no resume point."""
        now = timezone.now()
        with transaction.atomic():
            cursor = runs.cursor(self.run.entity, self.run.run_type)
            stats = {k: v for k, v in cursor.checkpoint.items() if k != "resume"}
            if self.run.run_type == SyncRun.RunType.INCREMENTAL:
                stats["changed"] = self.run.fetched
            else:
                stats["records"] = self.state["rows"]
            if self.state.get("details_left"):
                stats["details_left"] = self.state["details_left"]
            cursor.checkpoint = stats
            seen = parse_zoho_time(self.state.get("max_modified"))
            if seen is not None and (cursor.watermark is None or seen > cursor.watermark):
                cursor.watermark = seen
            cursor.last_run, cursor.last_run_at, cursor.last_success_at = self.run, now, now
            cursor.save()


def newest(current: str | None, rows: list[dict[str, Any]]) -> str | None:
    best = parse_zoho_time(current)
    for row in rows:
        version = version_of(row)
        if version is not None and (best is None or version > best):
            best = version
    return best.isoformat() if best else None


def newest_watermark(slug: str) -> datetime | None:
    """A completed full scan saw everything up to its watermark too."""
    from sync.models import SyncCursor

    marks = SyncCursor.objects.filter(
        entity=slug, run_type__in=[SyncRun.RunType.FULL, SyncRun.RunType.INCREMENTAL], watermark__isnull=False
    ).values_list("watermark", flat=True)
    return max(marks, default=None)


def stock_changed(items: list[dict[str, Any]]) -> list[str]:
    """Tracked items never snapshotted (first), then those whose total differs from the ERP's levels.

    A list row carries the item's total `stock_on_hand` but not its locations: comparing totals
    spends a detail call only where stock moved (Zoho does not bump last_modified_time for it).
    """
    totals = {str(i["item_id"]): i.get("stock_on_hand") for i in items if i.get("stock_on_hand") not in (None, "")}
    stored = dict(
        StockLevel.objects.filter(item_id__in=totals)
        .values("item_id")
        .annotate(total=Sum("stock_on_hand"))
        .values_list("item_id", "total")
    )
    new = [i for i in totals if i not in stored]
    moved = [i for i in totals if i in stored and stored[i] != Decimal(str(totals[i]))]
    return new + moved


def needing_detail(entity: Entity, rows: list[dict[str, Any]]) -> list[str]:
    """Ids whose ERP row is missing (first), or older than the list row, or holds only a summary."""
    ids = [str(row[entity.id_field]) for row in rows if row.get(entity.id_field) not in (None, "")]
    model = apps.get_model(entity.erp_model)
    stored = {
        zoho_id: (modified, is_summary)
        for zoho_id, modified, is_summary in model.objects.filter(zoho_id__in=ids).values_list(
            "zoho_id", "zoho_last_modified", "is_summary"
        )
    }
    versions = {str(row.get(entity.id_field)): version_of(row) for row in rows}
    new = [i for i in ids if i not in stored]
    changed = [
        i
        for i in ids
        if i in stored
        and (stored[i][1] or (versions[i] is not None and (stored[i][0] is None or stored[i][0] < versions[i])))
    ]
    return new + changed
