"""`manage.py process_queue [--once]`: drain the queue in the foreground."""

from __future__ import annotations

import time
from collections import Counter

from django.core.management.base import BaseCommand

from sync import worker

PROGRESS_EVERY_SECONDS = 10


class Command(BaseCommand):
    help = "Apply queued changes in the foreground until stopped (SIGTERM/Ctrl-C finish the batch first)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once",
            action="store_true",
            help="Stop when no row is due (future retries, live leases and paused entities are left).",
        )

    def handle(self, *, once: bool, **options):
        worker_id = worker.new_worker_id("cli")
        self._last_report = time.monotonic()
        with worker.stop_on_signals() as stop:
            tally = worker.drain(None, worker_id=worker_id, stop=stop, once=once, progress=self._progress)
        self.stdout.write(f"{'done' if once else 'stopped'}: {_counts(tally)}")

    def _progress(self, tally: Counter) -> None:
        if time.monotonic() - self._last_report >= PROGRESS_EVERY_SECONDS:
            self._last_report = time.monotonic()
            self.stdout.write(f"… {_counts(tally)}")


def _counts(tally: Counter) -> str:
    statuses = ["completed", "skipped", "retry", "dead_letter", "lease_lost", "released"]
    return ", ".join(f"{status} {tally.get(status, 0)}" for status in statuses)
