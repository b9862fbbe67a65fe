"""`manage.py sync_zoho --entity E|all --mode full|incremental`: pull runs in the foreground."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sync import entities, pull
from sync.models import SyncRun


class Command(BaseCommand):
    help = "Pull from Zoho: one run per entity, with progress; exits 1 if any run failed, was deferred or refused."

    def add_arguments(self, parser):
        parser.add_argument("--entity", required=True, help=f"all, or one of: {', '.join(entities.ENTITIES)}")
        parser.add_argument("--mode", choices=["full", "incremental"], default="incremental")

    def handle(self, *args, entity: str, mode: str, **options):
        try:
            slugs = pull.slugs_for(entity, mode)
        except entities.UnknownEntity:
            raise CommandError(f"unknown entity {entity!r}; use all or one of {', '.join(entities.ENTITIES)}") from None
        stop = {"asked": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(asked=True))
        ok = True
        for slug in slugs:
            if stop["asked"]:
                break
            ok = self.pull_one(slug, mode, stop) and ok
        if stop["asked"] or not ok:
            raise SystemExit(1)

    def pull_one(self, slug: str, mode: str, stop: dict) -> bool:
        try:
            run = pull.start_run(slug, mode, now=timezone.now(), trigger="manual")
        except pull.run_lifecycle.RunRefused as exc:
            self.stderr.write(f"{slug}: refused: {exc}")
            return False
        if run.status == SyncRun.Status.PENDING:
            self.stdout.write(f"{slug}: {run.run_type} run #{run.pk}, about {run.estimated_calls} calls")
            run = pull.execute(run.pk, on_page=self.progress, should_stop=lambda: stop["asked"])
        self.stdout.write(
            f"{slug}: {run.status} — {run.calls} calls, {run.fetched} fetched, {run.queued} queued"
            + (f"; {run.error}" if run.error else "")
        )
        return run.status == SyncRun.Status.COMPLETED

    def progress(self, run: SyncRun) -> None:
        state = pull.Checkpoint.of(run.checkpoint)
        page, phase = state.page, f" {state.phase}" if state.phase else ""
        self.stdout.write(
            f"  {run.entity}{phase}: page {page} · {run.fetched} fetched · {run.queued} queued · {run.calls} calls"
        )
