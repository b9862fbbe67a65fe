"""`manage.py resume_entity E…`: apply these entities' queued changes again."""

from __future__ import annotations

from sync import queue
from sync.management.commands import pause_entity
from tdscore.actions import Actor


class Command(pause_entity.Command):
    help = "Resume applying these entities: what waited in the queue while they were paused is applied."
    verb = "resumed"

    def change(self, slugs: list[str]) -> list[str]:
        return queue.resume(slugs, actor=Actor.command())
