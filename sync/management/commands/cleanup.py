"""`manage.py cleanup [--dry-run] [--archive DIR]`: retention."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from sync import retention


class Command(BaseCommand):
    help = (
        "Delete logs, metrics, finished queue and inbox rows, resolved dead letters, the Zoho call log and "
        "task results past their retention; never an unresolved dead letter or the audit trail."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print what would be deleted; delete nothing")
        parser.add_argument("--archive", type=Path, metavar="DIR", help="write what is deleted to DIR as .jsonl.gz")

    def handle(self, *args, dry_run: bool, archive: Path | None, **options):
        now = timezone.now()
        if dry_run:
            for name, count in retention.plan(now=now).items():
                self.stdout.write(f"would delete {count} {name}")
            return
        bars = Bars(retention.plan(now=now)) if self.stdout.isatty() else None
        try:
            result = retention.cleanup(now=now, archive=archive, progress=bars.update if bars else None)
        except retention.CleanupRunning as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bars:
                bars.close()
        for name, count in result.counts.items():
            self.stdout.write(f"deleted {count} {name}")
        for name in result.interrupted:
            self.stderr.write(f"{name}: stopped at rows locked by others; the rest waits for the next run")
        if archive is not None:
            self.stdout.write(f"archived to {archive}")


class Bars:
    """One progress bar per target, on a terminal only (a scheduled run writes plain lines)."""

    def __init__(self, totals: dict[str, int]):
        self.totals = totals
        self.bars: dict[str, tqdm] = {}

    def update(self, name: str, rows: int) -> None:
        if name not in self.bars:
            self.bars[name] = tqdm(total=self.totals[name], desc=name, unit=" rows", file=sys.stdout)
        self.bars[name].update(rows)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
