"""`manage.py sync_zoho --entity E|all --mode full|incremental`: pull runs in the foreground."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from functools import partial

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum
from django.utils import timezone

from sync import budget, entities, pull, run_lifecycle, survey
from sync.models import SyncRun
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

    def add_arguments(self, parser):
        parser.add_argument("--entity", required=True, help=f"all, or one of: {', '.join(entities.ENTITIES)}")
        parser.add_argument("--mode", choices=["full", "incremental"], default="incremental")
        parser.add_argument(
            "--first-pull",
            action="store_true",
            help="only the entities no run of this mode has completed for yet (make run's first full pull on a new database)",
        )

    def handle(self, *args, entity: str, mode: str, first_pull: bool = False, **options):
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
        now = timezone.now()
        usage = limiter.usage(now)
        self.estimated = plan.duration(usage)
        records = f"about {sum(plan.records.values()):,} records in Zoho, " if plan.records else ""
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
                slug, mode, now=timezone.now(), trigger="manual", estimate=surveyed, actor=Actor.command()
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
            run = pull.execute(
                run.pk, on_page=self.progress, should_stop=lambda: stop["asked"], sleep=partial(stoppable_sleep, stop)
            )
        self.stdout.write(
            f"{slug}: {run.status} — {run.calls:,} call{'' if run.calls == 1 else 's'}, {run.fetched:,} fetched, "
            f"{run.queued:,} queued" + (f"; {run.error}" if run.error else "")
        )
        return run.status == SyncRun.Status.COMPLETED

    def progress(self, run: SyncRun) -> None:
        state = pull.Checkpoint.of(run.checkpoint)
        page, phase = state.page, f" {state.phase}" if state.phase else ""
        self.stdout.write(
            f"  {run.entity}{phase}: page {page} · {run.fetched} fetched · {run.queued} queued · {run.calls} calls"
        )
