"""`manage.py sync_zoho --entity E|all --mode full|incremental [--since DATE]`: pull runs in the
foreground, with a progress bar (sync.progress); `--since` backfills what changed since DATE."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from datetime import time as day_start
from functools import partial

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from sync import budget, entities, pull, run_lifecycle, survey
from sync.models import SyncRun
from sync.progress import Progress
from sync.zoho import limiter
from sync.zoho.client import ZohoClient
from sync.zoho.errors import ZohoError
from tdscore.actions import Actor
from tdscore.humane import duration

# How long a first pull waits for an entity's scheduled run to end, and how often it looks.
OVERLAP_WAIT_SECONDS = 600
OVERLAP_POLL_SECONDS = 2


def stoppable_sleep(stop: dict, seconds: float) -> None:
    """A run's waits (for the minute's budget, after a 429) end at SIGTERM: the run stops there,
    its last page checkpointed, instead of holding a stop until the minute turns."""
    if stop["asked"]:
        raise pull.Stopped("stopped while waiting for Zoho; the next run resumes from its last page")
    time.sleep(seconds)
    if stop["asked"]:
        raise pull.Stopped("stopped while waiting for Zoho; the next run resumes from its last page")


class Command(BaseCommand):
    help = "Pull from Zoho: one run per entity, with progress; exits 1 if any run failed, was deferred or refused."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan: survey.Plan | None = None  # a full pull's estimate, said before it starts
        self.run_ids: list[int] = []  # the runs this command started
        self.estimated = timedelta()
        self.since: datetime | None = None  # a backfill's start

    def add_arguments(self, parser):
        parser.add_argument("--entity", required=True, help=f"all, or one of: {', '.join(entities.ENTITIES)}")
        parser.add_argument("--mode", choices=["full", "incremental"], default="incremental")
        parser.add_argument(
            "--first-pull",
            action="store_true",
            help="only the entities no run of this mode has completed for yet (make run's first full pull on a new database)",
        )
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="backfill: pull everything modified since DATE (YYYY-MM-DD, or an ISO time), after saying "
            "how many calls it costs and when it will finish at the plan's budget",
        )

    def handle(self, *args, entity: str, mode: str, first_pull: bool = False, since: str | None = None, **options):
        if since is not None:
            self.since = backfill_start(since, now=timezone.now())
            if mode != SyncRun.RunType.INCREMENTAL:
                raise CommandError("--since backfills what changed since DATE: it reads as --mode incremental does")
        try:
            slugs = pull.slugs_for(entity, mode)
        except entities.UnknownEntity:
            raise CommandError(f"unknown entity {entity!r}; use all or one of {', '.join(entities.ENTITIES)}") from None
        if first_pull:
            done = [
                slug
                for slug in slugs
                if run_lifecycle.ever_completed(slug, pull.run_type_for(entities.get(slug), mode))
            ]
            slugs = [slug for slug in slugs if slug not in done]
            if not slugs:
                self.stdout.write(f"Every entity has had a {mode} pull already: nothing to do.")
                return
            self.stdout.write(f"First {mode} pull of {', '.join(slugs)} ({len(slugs)} entities)")
        if self.since is not None:
            self.plan = plan = self.announce_backfill(slugs)
        else:
            self.plan = plan = self.announce(slugs) if mode == SyncRun.RunType.FULL else None
        stop = {"asked": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(asked=True))
        started = time.monotonic()
        ok = self.pull_all(slugs, mode, stop=stop, wait_overlap=first_pull)
        if plan is not None:
            spent = SyncRun.objects.filter(pk__in=self.run_ids).aggregate(calls=Sum("calls"))["calls"] or 0
            self.stdout.write(
                f"Took {spent:,} calls in {duration(time.monotonic() - started)} "
                f"(estimated {plan.total:,} calls, {duration(self.estimated.total_seconds())})"
            )
        if not ok:
            raise SystemExit(1)

    def announce(self, slugs: list[str]) -> survey.Plan | None:
        """Say what the full pull will cost before it starts (sync.survey); None when Zoho can't say."""
        try:
            with ZohoClient() as client:
                plan = survey.plan_full_pull(slugs, client)
        except ZohoError as exc:
            self.stderr.write(f"No estimate: Zoho did not answer the survey ({exc}); pulling anyway")
            return None
        records = f"about {sum(plan.records.values()):,} records in Zoho, " if plan.records else ""
        return self.say(plan, records)

    def announce_backfill(self, slugs: list[str]) -> survey.Plan:
        """Say what the backfill will cost, and when it will be done at the plan's budget, before it starts."""
        try:
            with ZohoClient() as client:
                plan = survey.plan_backfill(slugs, client, since=self.since)
        except ZohoError as exc:
            raise CommandError(f"Zoho did not answer the survey ({exc}): nothing pulled") from exc
        usage = limiter.usage(timezone.now())
        self.stdout.write(
            f"Backfill of {', '.join(slugs)} since {timezone.localtime(self.since):%Y-%m-%d %H:%M:%S}, "
            f"at the {settings.ZOHO_PLAN} plan's budget ({usage.daily_cap:,} calls a day, {usage.minute_cap} a minute)"
        )
        return self.say(plan, f"about {sum(plan.records.values()):,} records modified since then, ")

    def say(self, plan: survey.Plan, records: str) -> survey.Plan:
        now = timezone.now()
        usage = limiter.usage(now)
        self.estimated = plan.duration(usage)
        surveyed = f" (counted with {plan.survey_calls:,} list calls)" if plan.survey_calls else ""
        finish = timezone.localtime(plan.finish_at(usage, now))
        self.stdout.write(
            f"Estimate{surveyed}: {records}{plan.total:,} calls, {duration(self.estimated.total_seconds())}; "
            f"done at about {finish:%Y-%m-%d %H:%M:%S}"
        )
        if plan.total > budget.day_allowance(usage):
            self.stdout.write(
                f"  more than today's {budget.day_allowance(usage):,} calls above the reserve: runs defer "
                f"and resume after each daily reset ({timezone.localtime(usage.reset_at):%H:%M})"
            )
        return plan

    def pull_all(self, slugs, mode: str, *, stop: dict, wait_overlap: bool, sleep=time.sleep) -> bool:
        """Pull each entity in turn; with `wait_overlap`, one whose run is active gets its turn when it ends.
        Whether every run completed (and no stop was asked)."""
        ok, waiting = True, []
        for slug in slugs:
            if stop["asked"]:
                break
            done = self.pull_one(slug, mode, stop, wait_overlap=wait_overlap)
            if done is None:
                waiting.append(slug)
            else:
                ok = done and ok
        # A first pull waits for a scheduled run of the same entity to end, then takes its turn: the
        # entity would otherwise stay without its full pull until the nightly one.
        deadline = time.monotonic() + OVERLAP_WAIT_SECONDS
        while waiting and not stop["asked"] and time.monotonic() < deadline:
            sleep(OVERLAP_POLL_SECONDS)
            still = []
            for slug in waiting:
                done = self.pull_one(slug, mode, stop, wait_overlap=True, quiet=True)
                if done is None:
                    still.append(slug)
                else:
                    ok = done and ok
            waiting = still
        for slug in waiting:
            self.stderr.write(f"{slug}: not pulled: another run of it was still active after {OVERLAP_WAIT_SECONDS} s")
        return ok and not waiting and not stop["asked"]

    def pull_one(self, slug: str, mode: str, stop: dict, *, wait_overlap=False, quiet=False) -> bool | None:
        """Whether the run completed; None when it overlaps an active run and `wait_overlap` holds."""
        try:
            surveyed = self.plan.calls[slug] if self.plan and slug in self.plan.records else None
            run = pull.start_run(
                slug,
                mode,
                now=timezone.now(),
                trigger="manual",
                estimate=surveyed,
                actor=Actor.command(),
                since=self.since,
            )
        except pull.run_lifecycle.RunRefused as exc:
            # A first pull does not queue behind a scheduled run that is only waiting for Zoho's budget:
            # that run gives way (deferred; the next schedule runs it again) and the full pull starts.
            if wait_overlap and pull.run_lifecycle.give_way(
                slug, now=timezone.now(), reason="gave way to the first pull"
            ):
                return self.pull_one(slug, mode, stop, wait_overlap=wait_overlap, quiet=quiet)
            if wait_overlap and str(exc).startswith("overlap"):
                if not quiet:
                    self.stdout.write(f"{slug}: waiting for its turn ({exc})")
                return None
            self.stderr.write(f"{slug}: refused: {exc}")
            return False
        if run.status == SyncRun.Status.PENDING:
            self.run_ids.append(run.pk)
            self.stdout.write(
                f"{slug}: {run.run_type} run #{run.pk}, about {run.estimated_calls:,} call{'' if run.estimated_calls == 1 else 's'}"
            )
            with Progress(self.stdout, slug, total=run.estimated_calls, unit="calls") as progress:
                run = pull.execute(
                    run.pk,
                    on_page=partial(self.progress, progress),
                    should_stop=lambda: stop["asked"],
                    sleep=partial(stoppable_sleep, stop),
                )
        self.stdout.write(
            f"{slug}: {run.status} — {run.calls:,} call{'' if run.calls == 1 else 's'}, {run.fetched:,} fetched, "
            f"{run.queued:,} queued" + (f"; {run.error}" if run.error else "")
        )
        return run.status == SyncRun.Status.COMPLETED

    @staticmethod
    def progress(progress: Progress, run: SyncRun) -> None:
        """After each page: the calls made of those planned, and where the walk is."""
        state = pull.Checkpoint.of(run.checkpoint)
        where = {"page": state.page, "fetched": run.fetched, "queued": run.queued}
        progress.reach(run.calls, **({"phase": state.phase} if state.phase else {}), **where)


def backfill_start(text: str, *, now: datetime) -> datetime:
    """`--since`: a date (its midnight in TIME_ZONE) or an ISO time (UTC without an offset), in the past."""
    try:
        moment = parse_datetime(text)
        day = None if moment else parse_date(text)
    except ValueError:
        moment = day = None
    if day is not None:
        moment = timezone.make_aware(datetime.combine(day, day_start()))
    if moment is None:
        raise CommandError(
            f"--since {text!r} is not a date: give YYYY-MM-DD or an ISO time (2026-11-01T08:00:00+00:00)"
        )
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    if moment >= now:
        raise CommandError(f"--since {text!r} is not in the past: nothing was modified after now")
    return moment
