"""`manage.py replay_dlq [--id N] [--entity E] [--reason R] [--all] [--dry-run]`: requeue dead letters."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sync import queue
from sync.models import DeadLetter
from sync.progress import Progress
from tdscore.actions import Actor

# Not on a terminal, a line of counts every this many dead letters.
LINE_ROWS = 100


class Command(BaseCommand):
    help = "Send unresolved dead letters back to the queue (the same queue row, attempts reset)."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, dest="dead_letter_id", help="one dead letter by id")
        parser.add_argument("--entity", help="only this entity slug")
        parser.add_argument("--reason", choices=DeadLetter.Reason.values, help="only this reason")
        parser.add_argument("--all", action="store_true", dest="every", help="every unresolved dead letter (no filter)")
        parser.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")

    def handle(self, *, dead_letter_id, entity, reason, every, dry_run, **options):
        # Listing is harmless: a dry run alone shows every unresolved dead letter.
        if dead_letter_id is None and not entity and not reason and not every and not dry_run:
            raise CommandError(
                "refusing to replay every dead letter without --all; filter with --id, --entity or --reason "
                "(or list them first with --dry-run)"
            )
        rows = DeadLetter.objects.order_by("pk")
        if dead_letter_id is not None:
            # Asked for by id: a resolved one is reported as such rather than silently matching nothing.
            rows = rows.filter(pk=dead_letter_id)
            if not rows.exists():
                raise CommandError(f"dead letter #{dead_letter_id} does not exist")
        else:
            rows = rows.unresolved()
        if entity:
            rows = rows.filter(entity=entity)
        if reason:
            rows = rows.filter(reason=reason)
        replayed, unreplayable = self._replay(list(rows), dry_run=dry_run)
        verb = "would replay" if dry_run else "replayed"
        left = f", {unreplayable} cannot be replayed (discard them or mark them fixed)" if unreplayable else ""
        self.stdout.write(f"{verb} {replayed}{left}")
        # Asked for by id, a dead letter that cannot be replayed is a failure; in a filtered batch it
        # is reported and passed over, as the dashboard's bulk replay does.
        if unreplayable and dead_letter_id is not None and not dry_run:
            raise CommandError(f"dead letter #{dead_letter_id} could not be replayed")

    def _replay(self, rows: list[DeadLetter], *, dry_run: bool) -> tuple[int, int]:
        """Each row in turn, counted on a progress bar; a dry run lists each one it would replay."""
        replayed = unreplayable = 0
        now, actor = timezone.now(), Actor.command()
        with Progress(self.stdout, "dead letters", total=len(rows), unit="rows", every=LINE_ROWS) as progress:
            for dead_letter in rows:
                label = f"#{dead_letter.pk} {dead_letter.entity} {dead_letter.object_id} ({dead_letter.reason})"
                try:
                    if dry_run:
                        queue.check_replay(dead_letter)  # reads only: nothing written, no replay logged
                    else:
                        queue.replay(dead_letter, actor=actor, now=now)
                except queue.DeadLetterError as exc:
                    self.stderr.write(f"{'would not replay' if dry_run else 'cannot replay'} {label}: {exc}")
                    unreplayable += 1
                else:
                    if dry_run:
                        progress.note(f"would replay {label}")
                    replayed += 1
                verb = "would replay" if dry_run else "replayed"
                progress.advance(**{verb: replayed, "cannot be replayed": unreplayable})
        return replayed, unreplayable
