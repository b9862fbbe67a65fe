"""`manage.py reconcile [--entity E] [--repair]`: compare Zoho and the ERP, report drift, repair."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sync import entities, reconcile, run_lifecycle
from sync.models import SyncRun
from sync.progress import Progress
from tdscore.actions import Actor


class Command(BaseCommand):
    help = "Reconcile Zoho and the ERP (one run per entity); --repair queues the fixes. Exits 1 if a run failed."

    def add_arguments(self, parser):
        parser.add_argument("--entity", default="all", help=f"all (default), or one of: {', '.join(entities.ENTITIES)}")
        parser.add_argument("--repair", action="store_true", help="queue fixes (source reconcile)")

    def handle(self, *args, entity: str, repair: bool, **options):
        if entity != "all" and entity not in entities.ENTITIES:
            raise CommandError(f"unknown entity {entity!r}; use all or one of {', '.join(entities.ENTITIES)}")
        slugs = list(entities.ENTITIES) if entity == "all" else [entity]
        ok = True
        for slug in slugs:
            try:
                with Progress(self.stdout, f"{slug} scanned", unit="calls") as progress:
                    run = self.reconcile_one(slug, repair=repair, on_page=partial(_show, progress))
            except run_lifecycle.RunRefused as exc:
                self.stderr.write(f"{slug}: refused: {exc}")
                ok = False
                continue
            self.report(run)
            ok = ok and run.status == SyncRun.Status.COMPLETED
        if not ok:
            raise SystemExit(1)

    @staticmethod
    def reconcile_one(slug: str, *, repair: bool, on_page: Callable[[SyncRun], None]) -> SyncRun:
        options = {"repair": repair, "actor": Actor.command(), "on_page": on_page}
        try:
            return reconcile.reconcile_entity(slug, now=timezone.now(), **options)
        except run_lifecycle.RunRefused:
            # An operator's reconciliation does not wait behind a scheduled run that is only waiting
            # for Zoho's budget: that run gives way (the next schedule runs it again).
            if not run_lifecycle.give_way(slug, now=timezone.now(), reason="gave way to a reconciliation"):
                raise
            return reconcile.reconcile_entity(slug, now=timezone.now(), **options)

    def report(self, run: SyncRun) -> None:
        if run.status != SyncRun.Status.COMPLETED:
            self.stderr.write(f"{run.entity}: {run.status}: {run.error}")
            return
        report = run.drift_report
        totals = ", ".join(f"{kind} {n}" for kind, n in report["totals"].items())
        queued = f"; {report['queued']} repairs queued" if report.get("queued") is not None else ""
        self.stdout.write(f"{run.entity}: Zoho {report['zoho']}, ERP {report['erp']}; drift: {totals}{queued}")


def _show(progress: Progress, run: SyncRun) -> None:
    """After each page of Zoho's list: the calls made of those planned, and the rows read."""
    progress.reach(run.calls, total=max(run.estimated_calls, run.calls), fetched=run.fetched)
