"""What a first full pull will cost, said before it starts.

Zoho's lists carry no total count (zoho/README.md "Pagination"), so an entity never scanned has
no size we know. The survey finds it with a few list calls: page 1, then pages 2, 4, 8, … until one
comes back short or empty, then halving the gap between the last full page and the first empty one
until the count is known within RATIO. An entity of one page costs one call; one of a thousand
pages about a dozen. The count gives the run's calls through the same sync.budget.estimate the
runs use, and the calls give a duration at the measured time of a call and the plan's minute
allowance. Entities already scanned are planned from their last scan, at no cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sync import budget, entities, pull, run_lifecycle
from sync.entities import Entity, Kind
from sync.models import SyncRun
from sync.zoho import limiter
from sync.zoho.client import ZohoClient

# The survey stops narrowing once the highest possible count is within this ratio of the lowest.
RATIO = 1.5


@dataclass(frozen=True)
class Count:
    """Records a list holds: between `low` and `high`, found with `calls` list calls."""

    low: int
    high: int
    calls: int
    seconds: float  # the calls' time together

    @property
    def likely(self) -> int:
        # The geometric middle: within sqrt(high / low) of the truth, however it falls.
        return round(math.sqrt(self.low * self.high)) if self.low else self.high


def count_records(client: ZohoClient, source: Entity, *, since: datetime | None = None) -> Count:
    """How many rows the list of `source` holds (see the module docstring); with `since`, how many
    were modified since then, where Zoho filters the list by it (Entity.modified_filter), else all."""
    per_page = budget.page_size()
    calls, started = 0, time.monotonic()

    def rows_on(page: int) -> tuple[int, bool]:
        nonlocal calls
        calls += 1
        result = client.list_page(source, page=page, per_page=per_page, modified_since=since)
        return len(result.rows), result.has_more

    full, empty = 0, None  # the last page seen full with more after it; the first page seen empty
    page = 1
    while empty is None:
        rows, more = rows_on(page)
        if rows and not more:  # the last page: the count is exact
            exact = (page - 1) * per_page + rows
            return Count(exact, exact, calls, time.monotonic() - started)
        if not rows:
            empty = page
        else:
            full, page = page, page * 2
    if full == 0:
        return Count(0, 0, calls, time.monotonic() - started)
    while (empty - 1) * per_page > RATIO * full * per_page and empty - full > 1:
        middle = (full + empty) // 2
        rows, more = rows_on(middle)
        if rows and not more:
            exact = (middle - 1) * per_page + rows
            return Count(exact, exact, calls, time.monotonic() - started)
        if rows:
            full = middle
        else:
            empty = middle
    # More than `full` pages, and no more rows than the pages before the first empty one hold.
    return Count(full * per_page + 1, (empty - 1) * per_page, calls, time.monotonic() - started)


@dataclass
class Plan:
    """A pull of several entities: calls per entity, and what the survey itself spent."""

    calls: dict[str, budget.Estimate] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)  # surveyed entities' likely counts
    survey_calls: int = 0
    survey_seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(estimate.total for estimate in self.calls.values())

    @property
    def seconds_per_call(self) -> float:
        # Measured on the survey's own calls; a guess of Zoho's usual answer time when none was made.
        return self.survey_seconds / self.survey_calls if self.survey_calls else 0.5

    def duration(self, usage: limiter.Usage, calls: int | None = None) -> timedelta:
        """How long `calls` (all of them by default) take one after another, at the measured time of
        a call and no more than the minute allowance (the cap minus its reserve) in any minute."""
        calls = self.total if calls is None else calls
        per_minute = max(1, usage.minute_cap - budget.reserve_calls(usage.minute_cap))
        call = self.seconds_per_call
        full_minutes = (calls - 1) // per_minute if calls else 0
        rest = calls - full_minutes * per_minute
        return timedelta(seconds=full_minutes * max(60.0, per_minute * call) + rest * call)

    def finish_at(self, usage: limiter.Usage, now: datetime) -> datetime:
        """When the calls are done: today, or after as many daily resets as the plan's budget needs
        (runs defer at the day's reserve and resume after the reset)."""
        today = budget.day_allowance(usage)
        if self.total <= today:
            return now + self.duration(usage)
        whole_day = max(1, usage.daily_cap - budget.reserve_calls(usage.daily_cap))
        days, last = divmod(self.total - max(today, 0), whole_day)
        if last == 0:
            days, last = days - 1, whole_day
        return usage.reset_at + timedelta(days=days) + self.duration(usage, last)


def plan_full_pull(slugs: list[str], client: ZohoClient, *, on_entity: Callable[[str], None] | None = None) -> Plan:
    """The calls a full pull of `slugs` will make: surveyed where never scanned, else from the last scan."""
    plan = Plan()
    counted: dict[str, Count] = {}

    def count(source: Entity) -> int:
        if source.slug not in counted:
            counted[source.slug] = found = count_records(client, source)
            plan.survey_calls += found.calls
            plan.survey_seconds += found.seconds
        return counted[source.slug].likely

    for slug in slugs:
        if on_entity:
            on_entity(slug)
        entity = entities.get(slug)
        run_type = pull.run_type_for(entity, SyncRun.RunType.FULL)
        if run_lifecycle.cursor(slug, run_type).checkpoint.get("records"):
            plan.calls[slug] = pull.planned_calls(entity, run_type)
            continue
        if entity.kind == Kind.STOCK:
            # Every item's stock differs from an empty ERP's: each one's snapshot is fetched.
            items = count(entities.get(entity.snapshots_of))
            records = plan.records[slug] = count(entity)
            plan.calls[slug] = budget.estimate(entity, run_type, records=items, changed=items, adjustments=records)
        else:
            records = plan.records[slug] = count(entity)
            # Never scanned: every document is new, so each with lines gets its detail fetched.
            plan.calls[slug] = budget.estimate(entity, run_type, records=records, changed=records)
    return plan


def plan_backfill(slugs: list[str], client: ZohoClient, *, since: datetime) -> Plan:
    """The calls a backfill (`sync_zoho --since`) will make: each entity's rows modified since
    `since`, surveyed as a first pull's are and read as an incremental run reads them (new or
    changed documents get their detail). Where Zoho cannot filter a list by modified time (contacts,
    sorted newest first instead), the whole list is counted: the estimate is then an upper bound.
    An entity without an incremental pull (stock, items) gets a full one, planned as such."""
    incremental = [slug for slug in slugs if entities.get(slug).incremental]
    plan = plan_full_pull([slug for slug in slugs if slug not in incremental], client)
    for slug in incremental:
        entity = entities.get(slug)
        found = count_records(client, entity, since=since)
        plan.survey_calls += found.calls
        plan.survey_seconds += found.seconds
        records = plan.records[slug] = found.likely
        plan.calls[slug] = budget.estimate(entity, SyncRun.RunType.INCREMENTAL, records=records, changed=records)
    return plan
