"""`manage.py replay_dlq [--id N] [--entity E] [--reason R] [--all] [--dry-run]`: requeue dead letters.

`--dry-run` previews each replay (sync.replay_preview): what the ERP row would become, field by
field, or why the apply would fail again; nothing is written."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sync import queue, replay_preview
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
        parser.add_argument(
            "--dry-run", action="store_true", help="show what each replay would change in the ERP; change nothing"
        )

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
        replay = self._preview if dry_run else self._replay
        replayed, unreplayable = replay(list(rows))
        verb = "would replay" if dry_run else "replayed"
        left = f", {unreplayable} cannot be replayed (discard them or mark them fixed)" if unreplayable else ""
        self.stdout.write(f"{verb} {replayed}{left}")
        # Asked for by id, a dead letter that cannot be replayed is a failure; in a filtered batch it
        # is reported and passed over, as the dashboard's bulk replay does.
        if unreplayable and dead_letter_id is not None and not dry_run:
            raise CommandError(f"dead letter #{dead_letter_id} could not be replayed")

    def _replay(self, rows: list[DeadLetter]) -> tuple[int, int]:
        """Each row in turn, counted on a progress bar."""
        replayed = unreplayable = 0
        now, actor = timezone.now(), Actor.command()
        with Progress(self.stdout, "dead letters", total=len(rows), unit="rows", every=LINE_ROWS) as progress:
            for dead_letter in rows:
                try:
                    queue.replay(dead_letter, actor=actor, now=now)
                except queue.DeadLetterError as exc:
                    self.stderr.write(f"cannot replay {_label(dead_letter)}: {exc}")
                    unreplayable += 1
                else:
                    replayed += 1
                progress.advance(replayed=replayed, **{"cannot be replayed": unreplayable})
        return replayed, unreplayable

    def _preview(self, rows: list[DeadLetter]) -> tuple[int, int]:
        previews = replay_preview.preview(rows, now=timezone.now())
        by_id = {row.pk: row for row in rows}
        for preview in previews:
            label = _label(by_id[preview.dead_letter_id])
            if not preview.replayable:
                self.stderr.write(f"would not replay {label}: {preview.error}")
                continue
            self.stdout.write(f"would replay {label}: {preview.summary}")
            for name, before, after in preview.shown_changes():
                self.stdout.write(f"    {name}: {before} → {after}")
        replayable = sum(p.replayable for p in previews)
        return replayable, len(previews) - replayable


def _label(dead_letter: DeadLetter) -> str:
    return f"#{dead_letter.pk} {dead_letter.entity} {dead_letter.object_id} ({dead_letter.reason})"
