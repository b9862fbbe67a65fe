"""The Zoho call budget: what a run will cost, whether it fits, and when the day's calls run out.

Zoho allows 100 calls a minute per organisation and 1,000-10,000 a day by plan (zoho/README.md).
A run is planned before it starts: list pages (200 rows each) plus one detail call per new or
changed document with lines; a stock run's item snapshots come in bulk, 100 items a call
(sync.zoho.client.ITEM_DETAILS_MAX). It runs when that fits the day's remaining calls minus a reserve
(config `zoho_budget_reserve`, a share of the cap kept for repairs and webhooks' confirmations),
is deferred until the daily reset when it does not fit today but would fit a fresh day, and is
refused when not even a whole day's allowance could hold its list pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from sync.config_keys import ZOHO_BUDGET_RESERVE
from sync.entities import Entity
from sync.models import SyncRun
from sync.zoho import limiter
from sync.zoho.client import ITEM_DETAILS_MAX
from tdscore import config
from tdscore.enums import Readiness

PAGE_SIZE = 200  # Zoho's maximum per_page


class Action(models.TextChoices):
    RUN = "run"
    DEFER = "defer"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Estimate:
    list_calls: int
    detail_calls: int

    @property
    def total(self) -> int:
        return self.list_calls + self.detail_calls


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def page_size() -> int:
    # Tests shrink pages (settings.TDS_PULL_PAGE_SIZE) to cross many pages with few records.
    return getattr(settings, "TDS_PULL_PAGE_SIZE", PAGE_SIZE)


def pages(rows: int) -> int:
    # An empty list still costs the one call that finds it empty.
    return max(1, math.ceil(rows / page_size()))


def item_detail_calls(items: int) -> int:
    """Calls Zoho Inventory's bulk item details need for `items` items."""
    return math.ceil(items / ITEM_DETAILS_MAX)


def estimate(entity: Entity, run_type: str, *, records: int, changed: int, adjustments: int = 0) -> Estimate:
    """Calls a run will make, from the records Zoho holds and how many changed since the last run.

    Incremental runs read only changed rows; full, stock and reconciliation runs read every row.
    Details are fetched for new or changed documents only: the ERP already holds the lines of the rest.
    Reconciliation reads list pages only (repairs are queued from list rows or fetched later).
    """
    rows = changed if run_type == SyncRun.RunType.INCREMENTAL else records
    list_calls = pages(rows)
    if run_type == SyncRun.RunType.STOCK:
        # The snapshot source's list (items) plus the documents list (adjustments); the snapshots
        # of the `changed` items whose stock moved come in bulk.
        list_calls += pages(adjustments)
        return Estimate(list_calls, item_detail_calls(changed))
    details = changed if entity.has_lines and run_type != SyncRun.RunType.RECONCILIATION else 0
    return Estimate(list_calls, details)


def reserve_calls(cap: int, *, reserve: float | None = None) -> int:
    share = config.get(ZOHO_BUDGET_RESERVE) if reserve is None else reserve
    return math.ceil(cap * share)


def decide(plan: Estimate, usage: limiter.Usage) -> Decision:
    """Run, defer or refuse a run planned at `plan` given today's usage (see the module docstring)."""
    kept = reserve_calls(usage.daily_cap)
    whole_day = usage.daily_cap - kept
    if plan.list_calls > whole_day:
        return Decision(
            Action.REFUSE,
            f"needs about {plan.list_calls} list calls, more than a whole day's allowance of {whole_day} "
            f"(daily cap {usage.daily_cap} minus the reserve {kept}); raise ZOHO_PLAN or scan less",
        )
    spendable = usage.remaining_today - kept
    if plan.list_calls > spendable:
        return Decision(
            Action.DEFER,
            f"daily budget: needs about {plan.total} calls ({plan.list_calls} list pages), "
            f"{max(spendable, 0)} left today above the reserve of {kept}; the cap resets at "
            f"{usage.reset_at:%Y-%m-%d %H:%M} UTC",
        )
    return Decision(Action.RUN, "fits the budget")


def minute_allowance(usage: limiter.Usage) -> int:
    """Calls a run may still make this minute, leaving the minute reserve to webhooks' repairs."""
    return usage.remaining_minute - reserve_calls(usage.minute_cap)


def day_allowance(usage: limiter.Usage) -> int:
    return usage.remaining_today - reserve_calls(usage.daily_cap)


@dataclass(frozen=True)
class Status:
    calls_today: int
    daily_cap: int
    reserve: int
    remaining_today: int
    minute_used: int
    minute_cap: int
    reset_at: datetime
    # When today's calls run out at today's pace; None when they last until the reset.
    exhaustion_at: datetime | None

    def as_dict(self) -> dict:
        return {
            "calls_today": self.calls_today,
            "daily_cap": self.daily_cap,
            "reserve": self.reserve,
            "remaining_today": self.remaining_today,
            "minute_used": self.minute_used,
            "minute_cap": self.minute_cap,
            "reset_at": self.reset_at.isoformat(),
            "exhaustion_at": self.exhaustion_at.isoformat() if self.exhaustion_at else None,
        }


def status(now: datetime, *, planned_per_day: float = 0.0) -> Status:
    """Today's budget. With the schedules' planned calls a day, also when today's calls run out."""
    usage = limiter.usage(now)
    return Status(
        calls_today=usage.calls_today,
        daily_cap=usage.daily_cap,
        reserve=reserve_calls(usage.daily_cap),
        remaining_today=usage.remaining_today,
        minute_used=usage.minute_used,
        minute_cap=usage.minute_cap,
        reset_at=usage.reset_at,
        exhaustion_at=projected_exhaustion(usage, now, planned_per_day),
    )


def projected_exhaustion(usage: limiter.Usage, now: datetime, planned_per_day: float) -> datetime | None:
    """When the calls left today run out if the rest of the day spends at the plan's pace (its calls
    a day, spread evenly); None if they outlast the reset.

    The plan's pace, not today's: a first full pull spends hundreds of calls in its first minutes,
    once, and extrapolating that minute would call a healthy day exhausted."""
    if planned_per_day <= 0:
        return None
    at = now + timedelta(days=max(usage.remaining_today, 0) / planned_per_day)
    return at if at < usage.reset_at else None


def readiness(s: Status) -> tuple[Readiness, str]:
    """The `zoho_budget` readiness check: degraded when only the reserve is left or it will be soon."""
    used = f"{s.calls_today:,} of {s.daily_cap:,} calls used today"
    if s.remaining_today <= s.reserve:
        return Readiness.DEGRADED, f"{used}: only the reserve is left until {s.reset_at:%H:%M} UTC"
    if s.exhaustion_at is not None:
        return (
            Readiness.DEGRADED,
            f"{used}: at the schedules' pace they run out at {s.exhaustion_at:%H:%M} UTC, before the reset",
        )
    return Readiness.OK, used
