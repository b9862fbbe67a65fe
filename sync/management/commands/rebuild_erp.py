"""`manage.py rebuild_erp --entity E`: re-apply E's stored payloads through the apply path (sync.rebuild)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sync import entities, rebuild, worker
from sync.config_keys import PAUSED_ENTITIES, QUEUE_POLL_INTERVAL_MS
from sync.models import QueueItem
from sync.progress import Progress
from tdscore import config

# The rows' outcomes are counted (one GROUP BY) at most this often; a line is printed per LINE_ROWS.
TALLY_EVERY_SECONDS = 1
LINE_ROWS = 1000


class Command(BaseCommand):
    help = (
        "Map E's stored payloads again after a mapping change: queued with source replay and applied here "
        "(drainers help if running). No Zoho calls. Exits 1 if any row was dead-lettered."
    )

    def add_arguments(self, parser):
        parser.add_argument("--entity", required=True, choices=list(entities.ENTITIES))

    def handle(self, *args, entity: str, **options):
        if entity in config.get(PAUSED_ENTITIES):
            raise CommandError(f"{entity} is paused: resume it first, or its rebuilt rows would wait")
        started = timezone.now()
        with Progress(self.stdout, f"{entity} queued", unit="rows", every=rebuild.CHUNK) as queuing:
            queued = rebuild.queue_rebuild(entity, now=started, progress=queuing.reach)
            queuing.reach(queued)
        self.stdout.write(f"{entity}: {queued} stored payloads queued (source replay)")
        with Progress(self.stdout, f"{entity} mapped", total=queued, unit="rows", every=LINE_ROWS) as mapping:
            stop = self.apply(entity, started, mapping)
        counts = {"applied": 0, "unchanged": 0, "stale": 0, **rebuild.tally(entity, started)}
        self.stdout.write(f"{entity}: {_listed(counts)}")
        if stop.is_set():
            raise CommandError("stopped: the queued rows stay in the queue and drainers apply them")
        if counts.get("dead_letter"):
            raise CommandError(f"{counts['dead_letter']} row(s) dead-lettered: see replay_dlq --dry-run")

    @staticmethod
    def apply(entity: str, started: datetime, progress: Progress) -> threading.Event:
        """Apply the rebuild's rows here (drainers may help) until none is left or a signal stops it."""
        worker_id = worker.new_worker_id("rebuild")
        last = time.monotonic()
        with worker.stop_on_signals() as stop:
            while not stop.is_set() and rebuild.unfinished(entity, started):
                if not worker.process_batch(worker_id, timezone.now()):
                    stop.wait(config.get(QUEUE_POLL_INTERVAL_MS) / 1000)  # rows in flight elsewhere, or retrying
                if time.monotonic() - last >= TALLY_EVERY_SECONDS:
                    last = time.monotonic()
                    _show(progress, rebuild.tally(entity, started))
            _show(progress, rebuild.tally(entity, started))
        return stop


def _show(progress: Progress, tally: dict[str, int]) -> None:
    """The rows finished (applied, skipped or dead-lettered), with each outcome's count."""
    unfinished = {*QueueItem.WAITING, QueueItem.Status.PROCESSING}
    outcomes = {name: n for name, n in tally.items() if name not in unfinished}
    progress.reach(sum(outcomes.values()), **outcomes)


def _listed(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())
