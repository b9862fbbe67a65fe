"""The django-q2 schedules, declared once here, fitted to the Zoho budget, and installed by
`setup_schedules` — and again by the every-minute `tds-schedules-watch` whenever what is declared
differs from what is installed (a schedule key changed, the organisation grew), so no restart or
manual step is needed.

As configured (the seeds' cadence): full pull daily at 02:00, incremental pulls hourly, stock every
15 minutes, reconciliation nightly, heal every 15 minutes, cleanup daily, alerts and metric roll-ups
every minute. The pulling ones cost Zoho calls: `calls_per_day()` prices each with the run planner
(sync.budget) for the organisation as the last scans measured it (`known_organisation()`). When the
total exceeds the plan's daily cap less the reserve, `plan()` stretches the schedule that costs most
to the next longer interval, again until it fits (the full pull, last, from daily to weekly);
reconciliation is never stretched, as it is what catches deletes webhooks missed. Each stretch is
reported with its reason by `setup_schedules`, `tds_status` and the django-q2 Schedule admin. On the
Free plan an organisation of 2,000 items, 1,000 contacts and 5,000 documents gets stock hourly and
incremental pulls every two hours, the rest as configured (tests/pull/test_schedules.py); a fresh
installation, which has counted nothing yet, starts as configured and is stretched by the watch
once the first scans have measured it.

Why the incremental pulls and stock runs are affordable at all:
- incremental pulls only where they are cheap (a filtered or newest-first list: products, invoices,
  bills, sales orders, customers, vendors), one call each when little changed;
- stock: the items list, with a detail call only for items whose stock moved;
- the other lists (credit notes, payments, adjustments, price lists, users) are read whole by the
  full pull and the nightly reconciliation, which also repairs what webhooks missed.
Each scheduled run takes its entity's lock (sync.run_lifecycle), so two runs of an entity never overlap.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django_q.models import Schedule

from sync import budget, entities, pull, run_lifecycle
from sync.config_keys import (
    CLEANUP_SCHEDULE_CRON,
    DRAINERS,
    FULL_SYNC_SCHEDULE_CRON,
    HEAL_INTERVAL_MINUTES,
    INCREMENTAL_SYNC_INTERVAL_MINUTES,
    RECONCILIATION_SCHEDULE_CRON,
    STOCK_SYNC_INTERVAL_MINUTES,
)
from sync.models import SyncCursor, SyncRun
from sync.zoho import limiter
from tdscore import config
from tdscore.enums import Readiness

DAY = timedelta(days=1)
PULLING = ("sync.tasks.scheduled_pull", "sync.tasks.scheduled_reconcile")
# The intervals a stretched schedule steps through, up to once a day.
STEPS_MINUTES = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440)
PREFIX = "tds-"


@dataclass(frozen=True)
class Declared:
    name: str
    func: str
    args: str = ""  # django-q2 stores args as the text of a Python tuple
    minutes: int | None = None
    cron: str | None = None

    @property
    def schedule_type(self) -> str:
        return Schedule.CRON if self.cron else Schedule.MINUTES

    @property
    def pulls(self) -> bool:
        return self.func in PULLING

    @property
    def cadence(self) -> str:
        if self.cron:
            return f"cron {self.cron!r}"
        return f"every {self.minutes} min" if self.minutes < 60 else f"every {self.minutes / 60:g} h"

    def runs_per_day(self) -> float:
        if self.minutes:
            return 24 * 60 / self.minutes
        start = datetime(2026, 1, 5, tzinfo=timezone.get_current_timezone())  # a Monday
        fires, at = 0, croniter(self.cron, start)
        while at.get_next(datetime) < start + 7 * DAY:
            fires += 1
        return fires / 7

    def next_run(self, now: datetime) -> datetime:
        if self.cron:
            return croniter(self.cron, timezone.localtime(now)).get_next(datetime)
        return now

    def installed_as(self) -> dict:
        return {
            "func": self.func,
            "args": self.args or None,
            "schedule_type": self.schedule_type,
            "minutes": self.minutes,
            "cron": self.cron,
            "repeats": -1,
        }


def worker_split() -> dict[str, int]:
    """The cluster's workers, those the drainers keep, and how many runs may take at once."""
    return {
        "workers": settings.Q_CLUSTER["workers"],
        "drainers": config.get(DRAINERS),
        "runs": run_lifecycle.run_slots(),
    }


def worker_line() -> str:
    split = worker_split()
    line = (
        f"cluster workers: {split['workers']}, {split['drainers']} kept for the drainers; "
        f"pull and reconciliation runs may take {split['runs']} at once"
    )
    if not split["runs"]:
        line += " — none: raise TDS_Q_WORKERS above `drainers` or no scheduled run will start"
    return line


def wanted() -> list[Declared]:
    """The schedules as configured, before the budget is consulted."""
    return [
        Declared("tds-drainer-watchdog", "sync.tasks.ensure_drainers", minutes=1),
        Declared("tds-schedules-watch", "sync.tasks.ensure_schedules", minutes=1),
        Declared(
            "tds-pull-incremental",
            "sync.tasks.scheduled_pull",
            args="('incremental',)",
            minutes=config.get(INCREMENTAL_SYNC_INTERVAL_MINUTES),
        ),
        Declared(
            "tds-pull-stock",
            "sync.tasks.scheduled_pull",
            args="('stock',)",
            minutes=config.get(STOCK_SYNC_INTERVAL_MINUTES),
        ),
        Declared(
            "tds-pull-full", "sync.tasks.scheduled_pull", args="('full',)", cron=config.get(FULL_SYNC_SCHEDULE_CRON)
        ),
        Declared("tds-reconcile", "sync.tasks.scheduled_reconcile", cron=config.get(RECONCILIATION_SCHEDULE_CRON)),
        Declared("tds-heal", "sync.tasks.heal_task", minutes=config.get(HEAL_INTERVAL_MINUTES)),
        Declared("tds-cleanup", "sync.tasks.cleanup_task", cron=config.get(CLEANUP_SCHEDULE_CRON)),
        Declared("tds-check-alerts", "alerts.tasks.check_alerts", minutes=1),
        Declared("tds-metric-rollup", "monitoring.tasks.rollup_metrics", minutes=1),
    ]


# --- Fitting the schedules to the budget ---------------------------------------------------------


@dataclass(frozen=True)
class Stretch:
    name: str
    wanted: str
    planned: str
    reason: str

    def line(self) -> str:
        return f"stretched {self.name}: {self.wanted} → {self.planned}: {self.reason}"


@dataclass(frozen=True)
class Plan:
    schedules: list[Declared]
    stretches: list[Stretch]
    calls_per_day: float
    allowance: int
    fits: bool


def plan(org: Organisation | None = None) -> Plan:
    """The schedules to install: as configured, stretched until their Zoho calls fit the budget."""
    org = org or known_organisation()
    cap = limiter.daily_cap()
    allowance = cap - budget.reserve_calls(cap)
    schedules = wanted()
    asked = _total(org, schedules)
    while _total(org, schedules) > allowance:
        cost = calls_per_day(org, schedules)
        longer = [(cost[s.name], s, _longer(s)) for s in schedules if s.pulls and _longer(s) is not None]
        if not longer:
            break
        _, item, stretched = max(longer, key=lambda option: option[0])
        schedules = [stretched if s.name == item.name else s for s in schedules]
    total = _total(org, schedules)
    reason = (
        f"as configured the schedules need about {asked:,.0f} Zoho calls a day; the {settings.ZOHO_PLAN} "
        f"plan allows {allowance:,} after the reserve ({cap:,} a day less {cap - allowance:,}); "
        f"stretched they need about {total:,.0f}"
    )
    by_name = {s.name: s for s in wanted()}
    stretches = [Stretch(s.name, by_name[s.name].cadence, s.cadence, reason) for s in schedules if s != by_name[s.name]]
    return Plan(schedules, stretches, total, allowance, total <= allowance)


def _total(org: Organisation, schedules: list[Declared]) -> float:
    return sum(calls_per_day(org, schedules).values())


def _longer(item: Declared) -> Declared | None:
    """The next longer cadence of a pulling schedule, or None where it may not stretch further."""
    if item.minutes:
        step = next((m for m in STEPS_MINUTES if m > item.minutes), None)
        return dataclasses.replace(item, minutes=step) if step else None
    if item.name == "tds-pull-full" and item.runs_per_day() > 1 / 7:
        minute, hour = item.cron.split()[:2]
        return dataclasses.replace(item, cron=f"{minute} {hour} * * 0")  # weekly, on Sunday
    return None


def declared() -> list[Declared]:
    return plan().schedules


def install(now: datetime) -> list[tuple[str, bool]]:
    """Create or update every declared schedule by name: (name, created) for each. Idempotent.

    Our schedules no longer declared (a renamed one) are removed, so nothing runs twice.
    """
    done = []
    items = declared()
    for item in items:
        fields = item.installed_as()
        # next_run only on creation: re-installing must not postpone a schedule that is due.
        _, created = Schedule.objects.update_or_create(
            name=item.name, defaults=fields, create_defaults={**fields, "next_run": item.next_run(now)}
        )
        done.append((item.name, created))
    Schedule.objects.filter(name__startswith=PREFIX).exclude(name__in=[i.name for i in items]).delete()
    return done


def out_of_date() -> list[str]:
    """Names of declared schedules whose installed row is missing or differs."""
    installed = {s.name: s for s in Schedule.objects.filter(name__startswith=PREFIX)}
    stale = []
    for item in declared():
        row = installed.get(item.name)
        if row is None or any(getattr(row, k) != v for k, v in item.installed_as().items()):
            stale.append(item.name)
    return stale


def ensure_installed(now: datetime) -> list[str]:
    """Re-install when the declared schedules changed (the watch task, every minute)."""
    stale = out_of_date()
    if stale:
        install(now)
    return stale


def scheduled_slugs(mode: str) -> list[str]:
    """The entities a scheduled pull of `mode` runs: stock entities by the stock schedule only."""
    stock = [e.slug for e in entities.ENTITIES.values() if e.kind == entities.Kind.STOCK]
    if mode == SyncRun.RunType.STOCK:
        return stock
    return [slug for slug in pull.slugs_for("all", mode) if mode != SyncRun.RunType.INCREMENTAL or slug not in stock]


# --- What the schedule costs -------------------------------------------------------------------


@dataclass(frozen=True)
class Organisation:
    """Records Zoho holds per entity, and the share of them that changes in a day."""

    records: dict[str, int]
    daily_change: float = 0.05


def known_organisation() -> Organisation:
    """The organisation as the last scans counted it (full-scan and stock cursors' statistics)."""
    records: dict[str, int] = {}
    for slug, run_type, checkpoint in SyncCursor.objects.values_list("entity", "run_type", "checkpoint"):
        counted = (checkpoint or {}).get("records", 0)
        if run_type == SyncRun.RunType.FULL:
            records[slug] = max(records.get(slug, 0), counted)
        elif run_type == SyncRun.RunType.STOCK:  # a stock run counts the items it snapshots
            records["products"] = max(records.get("products", 0), counted)
    return Organisation(records=records)


def calls_per_day(org: Organisation, schedules: list[Declared] | None = None) -> dict[str, float]:
    """Zoho calls a day of each pulling schedule (as planned, unless given), priced by the run planner."""
    schedules = plan(org).schedules if schedules is None else schedules
    stock = next((s.minutes for s in schedules if s.name == "tds-pull-stock"), None)
    out: dict[str, float] = {}
    for item in schedules:
        if item.func == "sync.tasks.scheduled_pull":
            mode = item.args.strip("(),'")
            per_run = sum(
                _run_calls(slug, mode, org, item.runs_per_day(), stock_minutes=stock) for slug in scheduled_slugs(mode)
            )
        elif item.func == "sync.tasks.scheduled_reconcile":
            per_run = sum(
                _run_calls(slug, SyncRun.RunType.RECONCILIATION, org, 1, stock_minutes=stock)
                for slug in entities.ENTITIES
            )
        else:
            continue  # the others never call Zoho
        out[item.name] = per_run * item.runs_per_day()
    # Documents that only full scans and reconciliation read get their detail call there, once a day
    # at most for each change.
    unscheduled = (
        set(entities.ENTITIES)
        - set(scheduled_slugs(SyncRun.RunType.INCREMENTAL))
        - set(scheduled_slugs(SyncRun.RunType.STOCK))
    )
    out["details-of-full-scanned"] = sum(
        org.records.get(slug, 0) * org.daily_change for slug in unscheduled if entities.get(slug).has_lines
    )
    return out


def _run_calls(slug: str, mode: str, org: Organisation, runs_per_day: float, *, stock_minutes: int | None) -> float:
    entity = entities.get(slug)
    run_type = pull.run_type_for(entity, mode)
    # Stock runs read their snapshot source's list (items); their detail calls are for items whose
    # stock moved, in bulk.
    records = org.records.get(entity.snapshots_of or slug, 0)
    changed = math.ceil(records * org.daily_change / runs_per_day)
    if run_type == SyncRun.RunType.STOCK:
        # Whatever triggers it, a stock run snapshots the items that moved since the last one.
        changed = math.ceil(records * org.daily_change * (stock_minutes or 24 * 60) / (24 * 60))
    elif run_type == SyncRun.RunType.FULL:
        changed = 0  # incremental pulls and reconciliation already fetched the changes' details
    plan = budget.estimate(entity, run_type, records=records, changed=changed, adjustments=org.records.get(slug, 0))
    return plan.total


PLANNED_CALLS_CACHE_KEY = "tds:schedules:planned-calls-per-day"


def budget_status(now: datetime) -> budget.Status:
    """Today's Zoho budget, with when it runs out if the installed schedules spend at their plan."""
    # Pricing the plan takes tens of milliseconds and changes only with a key or the organisation's
    # size; /health/ready is probed every few seconds, so the figure is kept a minute.
    per_day = cache.get_or_set(PLANNED_CALLS_CACHE_KEY, lambda: plan().calls_per_day, timeout=60)
    return budget.status(now, planned_per_day=per_day)


def budget_readiness(now: datetime) -> tuple[Readiness, str]:
    return budget.readiness(budget_status(now))
