"""The django-q2 schedules, declared once here and installed by `setup_schedules`.

Their defaults come from the budget: `calls_per_day()` prices a schedule with the run planner
(sync.budget) for an organisation's size and change rate, and the defaults keep an organisation of
2,000 items, 1,000 contacts and 5,000 documents inside Zoho's Free plan (1,000 calls a day) with
the reserve kept (tests/pull/test_schedules.py). What makes that possible:
- incremental pulls every hour only where they are cheap (a filtered or newest-first list:
  products, invoices, bills, sales orders, customers, vendors), one call each when little changed;
- stock every four hours: the items list, with a detail call only for items whose stock moved;
- the other lists (credit notes, payments, adjustments, price lists, users) are read whole by the
  weekly full pull and the nightly reconciliation, which also repairs what webhooks missed.
Each scheduled run takes its entity's lock (sync.runs), so two runs of an entity never overlap.
Interval and cron keys are read when `setup_schedules` runs: run it again after changing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter
from django.utils import timezone
from django_q.models import Schedule

from sync import budget, entities, pull
from sync.models import SyncRun
from tdscore import config

DAY = timedelta(days=1)


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


def declared() -> list[Declared]:
    return [
        Declared("tds-drainer-watchdog", "sync.tasks.ensure_drainers", minutes=1),
        Declared(
            "tds-pull-incremental",
            "sync.tasks.scheduled_pull",
            args="('incremental',)",
            minutes=config.get("incremental_sync_interval_minutes"),
        ),
        Declared(
            "tds-pull-stock",
            "sync.tasks.scheduled_pull",
            args="('stock',)",
            minutes=config.get("stock_sync_interval_minutes"),
        ),
        Declared(
            "tds-pull-full", "sync.tasks.scheduled_pull", args="('full',)", cron=config.get("full_sync_schedule_cron")
        ),
        Declared("tds-reconcile", "sync.tasks.scheduled_reconcile", cron=config.get("reconciliation_schedule_cron")),
        Declared("tds-metric-rollup", "tdscore.tasks.rollup_metrics", minutes=1),
    ]


def install(now: datetime) -> list[tuple[str, bool]]:
    """Create or update every declared schedule by name: (name, created) for each. Idempotent."""
    done = []
    for item in declared():
        fields = {
            "func": item.func,
            "args": item.args or None,
            "schedule_type": item.schedule_type,
            "minutes": item.minutes,
            "cron": item.cron,
            "repeats": -1,
        }
        # next_run only on creation: re-installing must not postpone a schedule that is due.
        _, created = Schedule.objects.update_or_create(
            name=item.name, defaults=fields, create_defaults={**fields, "next_run": item.next_run(now)}
        )
        done.append((item.name, created))
    return done


def scheduled_slugs(mode: str) -> list[str]:
    if mode == SyncRun.RunType.STOCK:
        return ["stock"]
    if mode == SyncRun.RunType.INCREMENTAL:
        return [slug for slug in pull.slugs_for("all", mode) if slug != "stock"]
    return pull.slugs_for("all", mode)


# --- What the schedule costs -------------------------------------------------------------------


@dataclass(frozen=True)
class Organisation:
    """Records Zoho holds per entity, and the share of them that changes in a day."""

    records: dict[str, int]
    daily_change: float = 0.05


def calls_per_day(org: Organisation) -> dict[str, float]:
    """Zoho calls a day of each pulling schedule, priced by the run planner."""
    out: dict[str, float] = {}
    for item in declared():
        if item.func == "sync.tasks.scheduled_pull":
            mode = item.args.strip("(),'")
            per_run = sum(_run_calls(slug, mode, org, item.runs_per_day()) for slug in scheduled_slugs(mode))
        elif item.func == "sync.tasks.scheduled_reconcile":
            per_run = sum(_run_calls(slug, SyncRun.RunType.RECONCILIATION, org, 1) for slug in entities.ENTITIES)
        else:
            continue  # the watchdog never calls Zoho
        out[item.name] = per_run * item.runs_per_day()
    # Documents that only full scans and reconciliation read get their detail call there, once a day
    # at most for each change.
    unscheduled = set(entities.ENTITIES) - set(scheduled_slugs(SyncRun.RunType.INCREMENTAL)) - {"stock"}
    out["details-of-full-scanned"] = sum(
        org.records.get(slug, 0) * org.daily_change for slug in unscheduled if entities.get(slug).has_lines
    )
    return out


def _run_calls(slug: str, mode: str, org: Organisation, runs_per_day: float) -> float:
    entity = entities.get(slug)
    run_type = pull.run_type_for(entity, mode)
    # Stock runs read the items list; their detail calls are for items whose stock moved.
    records = org.records.get("products" if run_type == SyncRun.RunType.STOCK else slug, 0)
    changed = math.ceil(records * org.daily_change / runs_per_day)
    if run_type == SyncRun.RunType.STOCK:
        # Whatever triggers it, a stock run snapshots the items that moved since the last one.
        changed = math.ceil(records * org.daily_change * config.get("stock_sync_interval_minutes") / (24 * 60))
    elif run_type == SyncRun.RunType.FULL:
        changed = 0  # incremental pulls and reconciliation already fetched the changes' details
    plan = budget.estimate(entity, run_type, records=records, changed=changed, adjustments=org.records.get("stock", 0))
    return plan.total
