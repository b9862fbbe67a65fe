"""Pull runs: read Zoho lists page by page and queue every row (source `pull`).

- incremental, where Zoho filters by `last_modified_time` (Entity.modified_filter): rows modified
  since the watermark minus `pull_overlap_seconds`; sorted oldest first only where Zoho documents
  the sort (Entity.modified_sort), in Zoho's own order elsewhere;
- incremental for contacts, which Zoho cannot filter but documents as sortable: newest first,
  stopping at the first row older than the watermark;
- full (on demand, weekly, and wherever incremental is impossible): every row;
- stock (Kind.STOCK): the snapshot source's list (items) with their details in bulk where stock
  moved, then the documents (adjustments).

Correct whatever order Zoho lists in. The watermark a completed run leaves is the moment its
walk began, never the newest row it saw: in a list Zoho does not sort by modified time, the newest
row read says nothing about the rows not yet read. A row modified after the walk began may have
moved between pages under the walk (Zoho pages by offset), skipping a neighbour: the run then walks
the same filter once more, and if rows move again it leaves the watermark where it was, so the
next run reads the same window again. A killed or deferred run resumes at its next page with the
same filter and the same walk start (Checkpoint), so what changed in between is caught the same way.

List rows are summaries; documents with lines also get a detail fetch, new and changed ones
first, as far as the budget allows (sync.budget). After each page is queued the run checkpoints
on itself and its cursor, in the same transaction as the queue rows. Rows are never written to
ERP tables here: the queue's one apply path does that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from django.apps import apps
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from sync import budget, entities, run_lifecycle
from sync.config_keys import PULL_OVERLAP_SECONDS, ZOHO_CALL_RETRIES
from sync.entities import Entity, Kind
from sync.models import QueueItem, SyncCursor, SyncLog, SyncRun
from sync.payloads import content_hash, latest_version, parse_zoho_time, trusted_version, version_of
from sync.queue import enqueue_many
from sync.zoho import limiter
from sync.zoho.client import ITEM_DETAILS_MAX, ZohoClient, ZohoError
from sync.zoho.errors import ErrorKind
from tdscore import actions, config, enums
from tdscore.actions import Actor
from tdscore.logs import add_log_context, logs_as

T = TypeVar("T")

SORT_ASCENDING = {"sort_column": "last_modified_time", "sort_order": "A"}
SORT_DESCENDING = {"sort_column": "last_modified_time", "sort_order": "D"}
# A 429, a 5xx or a dropped connection: wait and try the same call again, for at most this long in
# all, before the run fails (and a later run resumes from its checkpoint).
TRANSIENT_WINDOW = timedelta(minutes=15)
MINUTE_POLL_SECONDS = 0.5
# The longest a run waits inside its cluster worker. A longer wait (the breaker open, the minute's
# quota spent, a long backoff) gives the worker back: the run goes back to pending, keeping its
# checkpoint, and is started again when the wait is over (sync.tasks), so the drainers are never
# left without a worker while Zoho is away.
INLINE_WAIT_SECONDS = 2.0
# A minute's quota frees within the minute; the scheduler starts the run again after this.
MINUTE_QUOTA_WAIT_SECONDS = 15.0
# Walks of one filter in a run: the first, and one more when rows moved under it.
MAX_PASSES = 2


class Deferred(Exception):
    """The day's budget ran out mid-run: stop, keep the checkpoint, resume after the reset."""


class Stopped(Exception):
    """Asked to stop (SIGTERM) between pages."""


class MustWait(Exception):
    """Zoho asks for a longer wait than a run may spend in its worker: give the worker back."""

    def __init__(self, seconds: float, reason: str):
        super().__init__(reason)
        self.seconds = seconds


class Phase:
    """A stock run's two walks, in order."""

    SNAPSHOTS = "snapshots"
    DOCUMENTS = "documents"


def run_type_for(entity: Entity, mode: str) -> str:
    """The run type a requested mode (full, incremental or reconciliation) becomes for this entity."""
    if mode == SyncRun.RunType.RECONCILIATION:
        return SyncRun.RunType.RECONCILIATION
    if entity.kind == Kind.STOCK:
        return SyncRun.RunType.STOCK
    if mode == SyncRun.RunType.INCREMENTAL and entity.incremental:
        return SyncRun.RunType.INCREMENTAL
    return SyncRun.RunType.FULL


# --- Starting runs ----------------------------------------------------------------------------


def start_run(
    slug: str,
    mode: str,
    *,
    now: datetime,
    trigger: str,
    estimate: budget.Estimate | None = None,
    actor: Actor | None = None,
    since: datetime | None = None,
) -> SyncRun:
    """Plan a run and record it pending, or deferred with the reason; raise RunRefused otherwise.

    `by`: the operator who asks for it (the trigger, e.g. "schedule", when nobody did); its changes'
    audit rows name them.

    The entity lock makes the overlap check and the insert one step, so two starters (a schedule
    and an operator) never both get a run. `estimate` is a survey's (sync.survey), for an entity
    whose size no earlier run has seen. An `actor` (an operator; none for a schedule) is stamped
    on the run (`started_by`) and the run's start is one row of the action log. `since` makes an
    incremental run a backfill: every row modified since then, whatever the watermark says.
    """
    entity = entities.get(slug)
    run_type = run_type_for(entity, mode)
    with transaction.atomic():
        run_lifecycle.lock_entity(slug)
        active = run_lifecycle.active_run(slug, now=now)
        if active is not None:
            raise run_lifecycle.RunRefused(
                f"overlap: {active.run_type} run #{active.pk} of {slug} is {active.status} "
                f"(heartbeat {active.heartbeat_at or active.created_at:%H:%M:%S})"
            )
        plan = estimate or planned_calls(entity, run_type)
        decision = budget.decide(plan, limiter.usage(now))
        if decision.action == budget.Action.REFUSE:
            raise run_lifecycle.RunRefused(f"budget: {decision.reason}")
        # Who asked, or what (schedule, heal) when nobody did: the actor of the run's changes.
        stamped = {"started_by": actor.name if actor else trigger}
        if since is not None:
            stamped["checkpoint"] = {BACKFILL_SINCE: since.isoformat()}
        if decision.action == budget.Action.DEFER:
            run = run_lifecycle.create_deferred(
                slug, run_type, now=now, trigger=trigger, reason=decision.reason, estimated_calls=plan.total, **stamped
            )
        else:
            run = run_lifecycle.create(slug, run_type, now=now, trigger=trigger, estimated_calls=plan.total, **stamped)
        if actor is not None:
            after = {"run_type": run.run_type, "status": run.status, "estimated_calls": plan.total}
            actions.record(
                actor,
                enums.Action.RUN_START,
                f"sync run #{run.pk} ({run.run_type} {slug})",
                after=after,
                at=now,
                obj=run,
            )
        return run


# A backfill run's own filter, set when it is created (start_run's `since`); its first page's
# checkpoint then carries it as `since`, so a resumed backfill keeps it.
BACKFILL_SINCE = "backfill_since"


def planned_calls(entity: Entity, run_type: str) -> budget.Estimate:
    """Estimate from what the last runs saw (records in a full scan, changes in an incremental)."""
    stats = run_lifecycle.cursor(entity.slug, SyncRun.RunType.FULL).checkpoint
    changed = run_lifecycle.cursor(entity.slug, SyncRun.RunType.INCREMENTAL).checkpoint.get("changed", 0)
    if run_type == SyncRun.RunType.STOCK:
        stats = run_lifecycle.cursor(entity.slug, SyncRun.RunType.STOCK).checkpoint
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
        return [e.slug for e in entities.ENTITIES.values() if e.incremental]
    return list(entities.ENTITIES)


def start_runs(
    slugs: list[str], mode: str, *, now: datetime, trigger: str, actor: Actor | None = None
) -> tuple[list[SyncRun], dict[str, str]]:
    """Start a run per entity: the runs recorded (pending or deferred) and the refusals by entity."""
    started, refused = [], {}
    for slug in slugs:
        try:
            started.append(start_run(slug, mode, now=now, trigger=trigger, actor=actor))
        except run_lifecycle.RunRefused as exc:
            refused[slug] = str(exc)
    return started, refused


def pull_entity(
    slug: str, mode: str, *, now: datetime, trigger: str = "manual", actor: Actor | None = None, **options: Any
) -> SyncRun:
    """Start and execute one run in this process (commands, tasks, tests); `options` go to execute()."""
    run = start_run(slug, mode, now=now, trigger=trigger, actor=actor)
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
    in_cluster: bool = False,
) -> SyncRun:
    """pending → running → completed | failed | deferred, or back to pending to wait (MustWait).
    Returns the run as it ended.

    `on_page` is told after each page is queued (progress output); `should_stop` is asked after
    each page (SIGTERM): a stopped run fails with its checkpoint kept, so the next one resumes.
    `in_cluster` (sync.tasks): the run starts only while a slot is free (run_lifecycle.run_slots())
    and waits at most INLINE_WAIT_SECONDS in its worker; a command or a test waits in place.
    """
    now = timezone.now()
    run = run_lifecycle.claim(run_id, now=now, slots=run_lifecycle.run_slots() if in_cluster else None)
    if run is None:
        return SyncRun.objects.get(pk=run_id)
    add_log_context(entity=run.entity)
    calls = Calls(run, client or ZohoClient(), sleep=sleep, in_cluster=in_cluster)
    puller = Puller(run, calls, on_page=on_page, should_stop=should_stop)
    try:
        puller.pull()
    except Deferred as exc:
        return run_lifecycle.finish(run, SyncRun.Status.DEFERRED, now=timezone.now(), error=str(exc))
    except MustWait as exc:
        return wait_or_fail(run, exc)
    except run_lifecycle.LostLock as exc:
        run_lifecycle.log(run, str(exc), level=SyncLog.Level.WARNING)
        return SyncRun.objects.get(pk=run_id)
    except Stopped as exc:
        return run_lifecycle.finish(run, SyncRun.Status.FAILED, now=timezone.now(), error=str(exc))
    except Exception as exc:
        return run_lifecycle.fail(run, exc, now=timezone.now())
    puller.complete()
    return run_lifecycle.finish(run, SyncRun.Status.COMPLETED, now=timezone.now())


def wait_or_fail(run: SyncRun, wait: MustWait) -> SyncRun:
    """Back to pending until the wait is over, or failed once it has waited TRANSIENT_WINDOW in all
    without a page read (the next run resumes from the checkpoint either way)."""
    now = timezone.now()
    since = parse_zoho_time(run.checkpoint.get("waiting_since")) or now
    if now - since >= TRANSIENT_WINDOW:
        return run_lifecycle.finish(
            run, SyncRun.Status.FAILED, now=now, error=f"{wait}; still waiting after {TRANSIENT_WINDOW}"
        )
    return run_lifecycle.wait(run, now=now, seconds=wait.seconds, reason=str(wait), since=since)


# --- Calls within the budget: the one retry layer ---------------------------------------------


class Calls:
    """Zoho calls of one run, each paced to the budget and retried while Zoho asks us to wait.

    The client makes one attempt per call (plus one token refresh on a 401); this is the only
    place a call is tried again, so every wait renews the run's heartbeat and every attempt that
    reached Zoho counts in the run's `calls`.
    """

    def __init__(
        self,
        run: SyncRun,
        client: ZohoClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        in_cluster: bool = False,
    ) -> None:
        self.run, self.client, self.sleep = run, client, sleep
        # In a cluster worker, a longer wait gives the worker back (MustWait); elsewhere it waits.
        self.inline_wait = INLINE_WAIT_SECONDS if in_cluster else math.inf
        self.resume_hint = ""  # said in a Deferred: where the run resumes

    def __call__(self, fn: Callable[[], T]) -> T:
        give_up_at = timezone.now() + TRANSIENT_WINDOW
        attempts = 0
        while True:
            self.pace()
            try:
                result = fn()
            except ZohoError as exc:
                # Refused before the wire (breaker open, no limiter slot): no call to count.
                reached_zoho = exc.status is not None or exc.kind == ErrorKind.NETWORK
                attempts += int(reached_zoho)
                run_lifecycle.heartbeat(self.run, now=timezone.now(), calls=int(reached_zoho))
                wait = self.transient_wait(exc, attempts, give_up_at)
                run_lifecycle.log(
                    self.run, f"Zoho answered {exc!r}; trying again in {wait:.1f} s", level=SyncLog.Level.WARNING
                )
                self.sleep(wait)
                continue
            run_lifecycle.heartbeat(self.run, now=timezone.now(), calls=1)
            return result

    def transient_wait(self, exc: ZohoError, attempts: int, give_up_at: datetime) -> float:
        """Seconds to wait before trying again, or raise: Deferred for the day's budget, else exc."""
        if exc.kind in (ErrorKind.BUDGET, ErrorKind.DAILY_LIMIT):
            raise Deferred(f"daily budget: {exc}") from exc
        if exc.permanent or exc.kind in (ErrorKind.AUTH, ErrorKind.SCOPE):
            raise exc
        if exc.kind.zoho_unwell and attempts > config.get(ZOHO_CALL_RETRIES):
            raise exc  # the breaker has been told; a later run resumes from the checkpoint
        wait = exc.retry_after if exc.retry_after is not None else min(2.0**attempts, 30.0)
        if timezone.now() + timedelta(seconds=wait) > give_up_at:
            raise exc
        if wait > self.inline_wait:
            raise MustWait(min(wait, 60.0), f"Zoho answered {exc!r}") from exc
        return wait

    def pace(self) -> None:
        """Keep the reserve: no call when the day's or this minute's allowance is spent."""
        waited = 0.0
        while True:
            usage = limiter.usage(timezone.now())
            if budget.day_allowance(usage) <= 0:
                raise Deferred(
                    f"daily budget: {usage.calls_today} of {usage.daily_cap} calls used, the rest is the "
                    f"reserve; {self.resume_hint or 'resumes'} after {usage.reset_at:%H:%M} UTC"
                )
            if budget.minute_allowance(usage) > 0:
                return
            if waited >= self.inline_wait:
                raise MustWait(MINUTE_QUOTA_WAIT_SECONDS, "this minute's share of the Zoho calls is spent")
            run_lifecycle.heartbeat(self.run, now=timezone.now())
            self.sleep(MINUTE_POLL_SECONDS)
            waited += MINUTE_POLL_SECONDS


@dataclass(frozen=True)
class Page:
    number: int
    rows: list[dict[str, Any]]
    has_more: bool


def read_pages(
    calls: Calls,
    source: Entity,
    *,
    first_page: int = 1,
    since: datetime | None = None,
    params: dict[str, str] | None = None,
) -> Iterator[Page]:
    """List pages of `source` from `first_page`, each one budgeted call, until Zoho has no more."""
    number = first_page
    while True:
        result = calls(
            partial(
                calls.client.list_page,
                source,
                page=number,
                modified_since=since,
                params=params,
                per_page=budget.page_size(),
            )
        )
        yield Page(number, list(result.rows), bool(result.has_more))
        if not result.has_more:
            return
        number += 1


class Details:
    """Detail fetches within an allowance of calls: one per document, one per ITEM_DETAILS_MAX items."""

    def __init__(self, calls: Calls, allowance: int) -> None:
        self.calls, self.allowance = calls, allowance
        self.fetched = self.left = 0  # calls made; objects that wanted a detail and got none

    def documents(self, source: Entity, wanted: list[str]) -> dict[str, dict[str, Any]]:
        """Details in `wanted` order (new before changed) while the allowance lasts."""
        out: dict[str, dict[str, Any]] = {}
        for done, zoho_id in enumerate(wanted):
            if not self._spend():
                self.left += len(wanted) - done
                break
            try:
                out[zoho_id] = self.calls(partial(self.calls.client.get, source, zoho_id))
            except ZohoError as exc:
                if exc.kind != ErrorKind.NOT_FOUND:
                    raise
                # Deleted between the list and the detail: the summary is queued; a webhook or
                # reconciliation brings the delete.
        return out

    def items(self, source: Entity, wanted: list[str]) -> dict[str, dict[str, Any]]:
        """Item details in bulk (Zoho Inventory `itemdetails`), ITEM_DETAILS_MAX ids a call."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), ITEM_DETAILS_MAX):
            if not self._spend():
                self.left += len(wanted) - start
                break
            chunk = wanted[start : start + ITEM_DETAILS_MAX]
            for obj in self.calls(partial(self.calls.client.item_details, chunk)):
                out[str(obj.get(source.id_field))] = obj
        return out

    def _spend(self) -> bool:
        if self.allowance <= 0:
            return False
        self.allowance -= 1
        self.fetched += 1
        return True


@dataclass
class Checkpoint:
    """Where a run is, kept on the run and its cursor after every page (sync.run_lifecycle.save_checkpoint)."""

    page: int = 0  # the last page of this walk queued
    since: str | None = None  # the walk's filter (last_modified_time >= since), kept when resumed
    started_at: str | None = None  # when this walk began: a row modified later may have moved
    moved: bool = False  # a row of this walk was modified after it began
    passes: int = 0  # walks of this filter already done
    phase: str = ""  # stock: Phase.SNAPSHOTS, then Phase.DOCUMENTS
    rows: int = 0  # list rows read by this walk
    snapshot_rows: int = 0  # stock: rows of the snapshot source's list, kept into the documents phase
    changed: int = 0  # stock: items whose stock moved
    # stock: moved items whose bulk detail waits to fill a call of ITEM_DETAILS_MAX with the next page's
    waiting: list[str] = field(default_factory=list)
    details: int = 0  # detail calls made
    details_left: int = 0  # objects that wanted a detail the budget did not allow

    @classmethod
    def of(cls, data: dict[str, Any]) -> Checkpoint:
        state = cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        # A stock run checkpointed before the phases had these names resumes in the same phase.
        state.phase = {"items": Phase.SNAPSHOTS, "adjustments": Phase.DOCUMENTS}.get(state.phase, state.phase)
        return state

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def since_time(self) -> datetime | None:
        return parse_zoho_time(self.since)

    @property
    def started_time(self) -> datetime | None:
        return parse_zoho_time(self.started_at)


Prepared = list[tuple[dict[str, Any], bool]]  # (object, is_summary)
Prepare = Callable[[list[dict[str, Any]], bool], Prepared]  # (rows, last page?) → what to queue


class Puller:
    def __init__(
        self,
        run: SyncRun,
        calls: Calls,
        *,
        on_page: Callable[[SyncRun], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.run, self.calls, self.on_page, self.should_stop = run, calls, on_page, should_stop
        self.entity = entities.get(run.entity)
        resume = run_lifecycle.cursor(run.entity, run.run_type).checkpoint.get("resume")
        if run.checkpoint.get(BACKFILL_SINCE):
            resume = None  # a backfill not yet begun walks its own filter, not another run's leftover
        self.state = Checkpoint.of(resume) if resume else self.fresh_state()
        if resume:
            run_lifecycle.log(run, f"resuming at page {self.state.page + 1}", resume=resume)
        usage = limiter.usage(timezone.now())
        allowance = budget.day_allowance(usage) - planned_calls(self.entity, run.run_type).list_calls
        self.details = Details(calls, max(0, allowance))
        # Rows already prepared and queued by this run: a second walk skips them (no second detail).
        self.read: set[str] = set()

    def fresh_state(self) -> Checkpoint:
        state = Checkpoint(phase=Phase.SNAPSHOTS if self.entity.kind == Kind.STOCK else "")
        if self.run.run_type == SyncRun.RunType.INCREMENTAL:
            watermark = newest_watermark(self.entity.slug)
            if self.run.checkpoint.get(BACKFILL_SINCE):
                state.since = self.run.checkpoint[BACKFILL_SINCE]
            elif watermark is not None:
                state.since = (watermark - timedelta(seconds=config.get(PULL_OVERLAP_SECONDS))).isoformat()
        return state

    # The walks over list pages. ----------------------------------------------------------------

    def pull(self) -> None:
        if self.entity.kind != Kind.STOCK:
            self.walk(self.entity, self.documents)
            return
        if self.state.phase == Phase.SNAPSHOTS:
            self.walk(entities.get(self.entity.snapshots_of), self.stock_snapshots)
            self.state = Checkpoint(
                phase=Phase.DOCUMENTS,
                snapshot_rows=self.state.rows,
                changed=self.state.changed,
                details=self.state.details,
                details_left=self.state.details_left,
            )
        self.walk(self.entity, self.documents)

    def walk(self, source: Entity, prepare: Prepare) -> None:
        """Walk the list, and again while rows moved under the walk (at most MAX_PASSES in all)."""
        while True:
            self.walk_once(source, prepare)
            self.state.passes += 1
            if not self.state.moved or self.state.passes >= MAX_PASSES:
                return
            run_lifecycle.log(self.run, "rows changed while the list was read; reading it again from page 1")
            self.state.page, self.state.rows, self.state.started_at, self.state.moved = 0, 0, None, False

    def walk_once(self, source: Entity, prepare: Prepare) -> None:
        """Each page: pick its rows, fetch what they need, queue them and checkpoint, in one commit."""
        if self.state.started_at is None:
            # Whole seconds, as Zoho's times are: a row modified in this very second counts as moved.
            self.state.started_at = timezone.now().replace(microsecond=0).isoformat()
        since, params = self.query(source)
        self.calls.resume_hint = f"resumes from page {self.state.page + 1}"
        for page in read_pages(self.calls, source, first_page=self.state.page + 1, since=since, params=params):
            rows = self.fresh_rows(page.rows)
            unread = [row for row in rows if content_hash(row) not in self.read]
            prepared = prepare(unread, not page.has_more)
            now = timezone.now()
            started = self.state.started_time
            with transaction.atomic():
                queued = self.queue(prepared, now=now)
                self.state.page = page.number
                self.state.rows += len(page.rows)
                self.state.moved = self.state.moved or any(
                    (v := version_of(row)) is not None and v >= started for row in page.rows
                )
                self.state.details, self.state.details_left = self.details.fetched, self.details.left
                run_lifecycle.heartbeat(self.run, now=now, fetched=len(page.rows), queued=queued)
                run_lifecycle.save_checkpoint(self.run, self.state.as_json(), now=now)
            self.read.update(content_hash(row) for row in unread)
            self.calls.resume_hint = f"resumes from page {page.number + 1}"
            if self.on_page:
                self.on_page(self.run)
            if self.should_stop():
                raise Stopped(f"stopped after page {page.number}; the next run resumes from there")
            if len(rows) < len(page.rows):
                return  # newest first: the rest is older than the watermark

    def query(self, source: Entity) -> tuple[datetime | None, dict[str, str]]:
        """The list's filter and order: see the module docstring."""
        since = self.state.since_time
        if self.run.run_type != SyncRun.RunType.INCREMENTAL:
            # Full and stock walks read everything, in Zoho's order where it documents none of ours.
            return None, dict(SORT_ASCENDING) if source.modified_sort and self.entity.kind != Kind.STOCK else {}
        if source.modified_filter:
            return since, dict(SORT_ASCENDING) if source.modified_sort else {}
        return None, dict(SORT_DESCENDING)  # sorted, not filtered: fresh_rows() stops at the watermark

    def fresh_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Newest-first incremental pages (sorted, unfiltered lists) end at the first row older than
        the watermark."""
        since = self.state.since_time
        newest_first = self.run.run_type == SyncRun.RunType.INCREMENTAL and not self.entity.modified_filter
        if since is None or not newest_first:
            return rows
        fresh = []
        for row in rows:
            version = version_of(row)
            if version is not None and version < since:
                break
            fresh.append(row)
        return fresh

    def documents(self, rows: list[dict[str, Any]], last: bool = False) -> Prepared:
        """List rows as summaries, or the detail instead where a document with lines needs one."""
        wanted = needing_detail(self.entity, rows) if self.entity.has_lines else []
        details = self.details.documents(self.entity, wanted)
        prepared = []
        for row in rows:
            detail = details.get(str(row.get(self.entity.id_field)))
            prepared.append((detail, False) if detail else (row, True))
        return prepared

    def stock_snapshots(self, rows: list[dict[str, Any]], last: bool) -> Prepared:
        """Item details (with `locations[]`), in bulk, for items whose total stock differs from the
        ERP's. Whole calls only until the last page: the rest waits (in the checkpoint) for the next."""
        source = entities.get(self.entity.snapshots_of)
        moved = stock_changed(rows)
        self.state.changed += len(moved)
        wanted = self.state.waiting + [i for i in moved if i not in self.state.waiting]
        ready = len(wanted) if last else len(wanted) - len(wanted) % ITEM_DETAILS_MAX
        self.state.waiting = wanted[ready:]
        return [(detail, False) for detail in self.details.items(source, wanted[:ready]).values()]

    # Queue rows and the cursor. ------------------------------------------------------------------

    def queue(self, prepared: Prepared, *, now: datetime) -> int:
        rows = []
        latest = latest_version(now)
        for obj, is_summary in prepared:
            located = entities.locate(self.entity.slug, obj)
            if located.object_id is None:
                run_lifecycle.log(
                    self.run, "a list row without its id was skipped", level=SyncLog.Level.WARNING, row=obj
                )
                continue
            rows.append(
                QueueItem(
                    entity=located.entity.slug,
                    object_id=located.object_id,
                    payload=located.obj,  # enqueue_many hashes it as it encodes it
                    # An untrusted version is left off (the apply path refuses the row with the reason).
                    version=trusted_version(located.obj, latest=latest),
                    source=QueueItem.Source.PULL,
                    is_summary=is_summary,
                    sync_run_id=self.run.pk,
                    requested_by=self.run.started_by,
                )
            )
        return enqueue_many(rows, now=now)

    def complete(self) -> None:
        """Move the cursor: watermark, the stats the planner reads, and no resume point."""
        now = timezone.now()
        state = self.state
        with transaction.atomic():
            cursor = run_lifecycle.cursor(self.run.entity, self.run.run_type)
            stats = {k: v for k, v in cursor.checkpoint.items() if k != "resume"}
            if self.run.run_type == SyncRun.RunType.INCREMENTAL:
                stats["changed"] = state.rows
            elif self.run.run_type == SyncRun.RunType.STOCK:
                stats.update(records=state.snapshot_rows, adjustments=state.rows, changed=state.changed)
            else:
                stats["records"] = state.rows
            stats["details_left"] = state.details_left
            cursor.checkpoint = stats
            # Proven read: every row modified before the last walk began, unless rows still moved.
            proven = None if state.moved else state.started_time
            if proven is not None and (cursor.watermark is None or proven > cursor.watermark):
                cursor.watermark = proven
            cursor.last_run, cursor.last_run_at, cursor.last_success_at = self.run, now, now
            cursor.save()
            if state.moved:
                run_lifecycle.log(
                    self.run,
                    "rows kept changing while the list was read: the watermark stays, the next run reads "
                    "the same window again",
                    level=SyncLog.Level.WARNING,
                )


def newest_watermark(slug: str) -> datetime | None:
    """A completed full scan saw everything up to its watermark too."""
    marks = SyncCursor.objects.filter(
        entity=slug, run_type__in=[SyncRun.RunType.FULL, SyncRun.RunType.INCREMENTAL], watermark__isnull=False
    ).values_list("watermark", flat=True)
    return max(marks, default=None)


def stock_changed(items: list[dict[str, Any]]) -> list[str]:
    """Tracked items never snapshotted (first), then those whose total differs from the ERP's levels.

    A list row carries the item's total `stock_on_hand` but not its locations: comparing totals
    spends a detail only where stock moved (Zoho does not bump last_modified_time for it).
    """
    totals = {str(i["item_id"]): i.get("stock_on_hand") for i in items if i.get("stock_on_hand") not in (None, "")}
    stored = dict(
        apps.get_model("erp.StockLevel")
        .objects.filter(item_id__in=totals)
        .values("item_id")
        .annotate(total=Sum("stock_on_hand"))
        .values_list("item_id", "total")
    )
    new = [i for i in totals if i not in stored]
    moved = [i for i in totals if i in stored and stored[i] != _decimal(totals[i])]
    return new + moved


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


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
