"""`manage.py pause_entity E…`: stop applying these entities; their webhooks are still stored and queued."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sync import entities, queue
from tdscore.actions import Actor


class Command(BaseCommand):
    help = "Pause applying these entities (webhooks are still received and queued); resume_entity undoes it."
    verb = "paused"

    def add_arguments(self, parser):
        parser.add_argument("entities", nargs="+", metavar="ENTITY", help="entity slugs, e.g. invoices stock")

    def change(self, slugs: list[str]) -> list[str]:
        return queue.pause(slugs, actor=Actor.command())

    def handle(self, *args, **options):
        slugs = options["entities"]
        unknown = sorted(set(slugs) - set(entities.ENTITIES))
        if unknown:
            raise CommandError(
                f"unknown entities {', '.join(unknown)}; the entities are {', '.join(entities.ENTITIES)}"
            )
        paused = self.change(slugs)
        self.stdout.write(f"{self.verb} {', '.join(slugs)}; paused now: {', '.join(paused) or 'none'}")
