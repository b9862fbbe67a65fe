"""Self-healing (`manage.py heal`, scheduled every `heal_interval_minutes`): put right what a dead
process or a passing outage left behind, so nobody has to.

- Leases past `locked_until` (a drainer killed mid-batch) go back in line; drainers do this too,
  but only while one is running.
- Runs whose heartbeat stopped longer than `lock_timeout_seconds` ago are failed, so the entity's
  next run starts (and resumes from its checkpoint) instead of waiting for someone to notice.
- Transient dead letters (`retries_exhausted`, `lease_expired`) are replayed on a slow ladder
  (`heal_redrive_ladder_minutes`, 15 min → 1 h → 6 h → 24 h): whatever made them fail (Zoho, a
  deploy, a lock storm) has usually cleared by then. `validation`, `unknown_entity` and
  `zoho_rejected` fail the same way every time and are left to an operator. A redrive is
  `queue.replay` by `heal` (`Actor.process`), the operator's own path, with no action-log row.
- Parents that rows have referenced for longer than `parent_wait_minutes` without arriving are
  fetched from Zoho once each and queued (sync.parents); one Zoho does not have is marked so.
- Planner statistics of the hot tables are refreshed with ANALYZE where autovacuum has not
  (PostgreSQL), so the partial claim indexes are still chosen after a large backlog.

Every run records one `heal.<problem>` metric per problem with the count it found (zeros too), so an
alert rule can tell a problem that keeps coming back from one that was healed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, models, transaction
from django.db.models import Max

from sync import handlers, parents, queue, run_lifecycle
from sync.config_keys import HEAL_REDRIVE_LADDER_MINUTES, LOCK_TIMEOUT_SECONDS
from sync.errors import UnknownEntityError
from sync.models import DeadLetter, QueueItem, SyncRun
from tdscore import config
from tdscore.actions import Actor
from tdscore.models import Metric

TRANSIENT = (DeadLetter.Reason.RETRIES_EXHAUSTED, DeadLetter.Reason.LEASE_EXPIRED)
HEALER = "heal"
# Tables whose plans matter on every webhook and claim: ANALYZE them as autovacuum would.
ANALYZED_TABLES = ("tds_sync_queue", "tds_inbox_events")
# Autovacuum's own trigger: 50 rows plus 10 % of the table changed since the last ANALYZE.
ANALYZE_BASE_ROWS, ANALYZE_SHARE = 50, 0.1


# Heal writes one tds_metrics point per problem and run, named METRIC_PREFIX + the problem.
METRIC_PREFIX = "heal."


class Problem(models.TextChoices):
    EXPIRED_LEASES = "expired_leases"
    STUCK_RUNS = "stuck_runs"
    REDRIVEN = "redriven"
    SUPERSEDED = "superseded"
    STALE_STATISTICS = "stale_statistics"
    PARENTS_FETCHED = "parents_fetched"
    PARENTS_MISSING_IN_ZOHO = "parents_missing_in_zoho"

    @property
    def metric(self) -> str:
        return f"{METRIC_PREFIX}{self.value}"


@dataclass
class Report:
    counts: dict[Problem, int] = field(default_factory=lambda: dict.fromkeys(Problem, 0))
    lines: list[str] = field(default_factory=list)

    def note(self, problem: Problem, line: str) -> None:
        self.counts[problem] += 1
        self.lines.append(line)


def heal(*, now: datetime) -> Report:
    report = Report()
    release_expired_leases(now=now, report=report)
    fail_stuck_runs(now=now, report=report)
    resolve_superseded(now=now, report=report)
    redrive_dead_letters(now=now, report=report)
    fetch_awaited_parents(now=now, report=report)
    refresh_statistics(report=report)
    Metric.objects.bulk_create(
        [Metric(name=problem.metric, value=count, at=now) for problem, count in report.counts.items()],
        # One point per problem and instant (tds_metric_one_point): a second run at the same
        # instant replaces the first's count instead of failing.
        update_conflicts=True,
        unique_fields=["name", "at", "labels"],
        update_fields=["value"],
    )
    return report


def release_expired_leases(*, now: datetime, report: Report) -> None:
    released = 0
    while expired := QueueItem.objects.expired_leases(now).count():
        queue.recover_expired_leases(now=now)  # up to 500 rows a call
        left = QueueItem.objects.expired_leases(now).count()
        if left >= expired:
            break  # nothing moved: never spin
        released += expired - left
    if released:
        report.counts[Problem.EXPIRED_LEASES] += released
        report.lines.append(f"released {released} expired lease(s)")


def fail_stuck_runs(*, now: datetime, report: Report) -> None:
    for slug in SyncRun.objects.filter(status__in=run_lifecycle.ACTIVE).values_list("entity", flat=True).distinct():
        with transaction.atomic():
            run_lifecycle.lock_entity(slug)  # as a starter does, so heal and a new run never both decide
            stuck = run_lifecycle.fail_stale(slug, now=now)
        for _ in range(stuck):
            report.note(
                Problem.STUCK_RUNS,
                f"failed a stuck {slug} run (no heartbeat for over {config.get(LOCK_TIMEOUT_SECONDS)} s)",
            )


def resolve_superseded(*, now: datetime, report: Report) -> None:
    """Resolve open dead letters whose object already holds the same or a newer version: a later
    change reached the ERP, so they need no hand (the apply that overtakes one does it too)."""
    open_letters = DeadLetter.objects.unresolved().exclude(object_id="")
    for entity in open_letters.values_list("entity", flat=True).distinct().order_by("entity"):
        object_ids = list(open_letters.filter(entity=entity).values_list("object_id", flat=True).distinct())
        for start in range(0, len(object_ids), SUPERSEDE_CHUNK):
            chunk = object_ids[start : start + SUPERSEDE_CHUNK]
            try:
                stored = handlers.stored_versions(entity, chunk)
            except UnknownEntityError:
                break
            with transaction.atomic():
                resolved = queue.resolve_superseded(entity, stored, by=HEALER, now=now)
            if resolved:
                report.counts[Problem.SUPERSEDED] += resolved
                report.lines.append(f"resolved {resolved} {entity} dead letter(s) a newer version overtook")


SUPERSEDE_CHUNK = 1000


# --- The redrive ladder -------------------------------------------------------------------------
# `redrive_count` on a dead letter counts the redrives of its change (its queue row) so far: a new
# dead letter of a row heal sent back inherits the count of the one before, and is due at the next
# step of the ladder after its own failure. Past the last step it is no longer planned.


def redrive_dead_letters(*, now: datetime, report: Report) -> None:
    ladder = config.get(HEAL_REDRIVE_LADDER_MINUTES)
    open_transient = DeadLetter.objects.unresolved().filter(reason__in=TRANSIENT, queue_item__isnull=False)
    for dead_letter in open_transient.filter(next_redrive_at__isnull=True, redrive_count__lt=len(ladder)):
        _plan(dead_letter, ladder)
    for dead_letter in open_transient.filter(next_redrive_at__lte=now).order_by("next_redrive_at", "pk"):
        if _redrive(dead_letter, now=now):
            report.note(
                Problem.REDRIVEN,
                f"redrove dead letter #{dead_letter.pk} {dead_letter.entity} {dead_letter.object_id} "
                f"({dead_letter.reason}), redrive {dead_letter.redrive_count + 1} of {len(ladder)}",
            )


def _plan(dead_letter: DeadLetter, ladder: list[int]) -> None:
    earlier = (
        DeadLetter.objects.filter(queue_item_id=dead_letter.queue_item_id)
        .exclude(pk=dead_letter.pk)
        .aggregate(n=Max("redrive_count"))["n"]
        or 0
    )
    step = max(earlier, dead_letter.redrive_count)
    due = dead_letter.last_failed_at + timedelta(minutes=ladder[step]) if step < len(ladder) else None
    # Conditional: a dead letter resolved meanwhile (an operator, another healer) is left alone.
    DeadLetter.objects.unresolved().filter(pk=dead_letter.pk, next_redrive_at__isnull=True).update(
        redrive_count=step, next_redrive_at=due
    )


def _redrive(dead_letter: DeadLetter, *, now: datetime) -> bool:
    try:
        with transaction.atomic():
            queue.replay(dead_letter, actor=Actor.process(HEALER), now=now)
            DeadLetter.objects.filter(pk=dead_letter.pk).update(redrive_count=models.F("redrive_count") + 1)
    except queue.DeadLetterError:
        return False  # resolved meanwhile, or its row moved on: nothing to redrive
    return True


def fetch_awaited_parents(*, now: datetime, report: Report) -> None:
    with transaction.atomic():
        settled = parents.settle()
    if settled:
        report.lines.append(f"filled {settled} reference(s) whose parent landed as the child did")
    fetched = parents.fetch_overdue(now=now)
    if fetched.queued:
        report.counts[Problem.PARENTS_FETCHED] += fetched.queued
        report.lines.append(f"fetched {fetched.queued} awaited parent(s) from Zoho")
    if fetched.missing_in_zoho:
        report.counts[Problem.PARENTS_MISSING_IN_ZOHO] += fetched.missing_in_zoho
        report.lines.append(f"{fetched.missing_in_zoho} awaited parent(s) Zoho does not have (see reconcile's report)")
    if fetched.answered:
        report.lines.append(f"filled the references of {fetched.answered} parent(s) stored meanwhile")
    report.lines += [f"could not fetch a parent: {error}" for error in fetched.errors]


# --- Planner statistics -------------------------------------------------------------------------


def refresh_statistics(*, report: Report) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite plans without gathered statistics
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [list(ANALYZED_TABLES)],
        )
        for table, changed, live in cursor.fetchall():
            if changed > ANALYZE_BASE_ROWS + ANALYZE_SHARE * live:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
                report.note(Problem.STALE_STATISTICS, f"analyzed {table} ({changed} rows changed since the last)")
