"""`manage.py heal`: recover expired leases and stuck runs, redrive transient dead letters."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from sync import healing


class Command(BaseCommand):
    help = "Put right what dead processes and passing outages left behind; prints what it did."

    def handle(self, *args, **options):
        report = healing.heal(now=timezone.now())
        for line in report.lines:
            self.stdout.write(line)
        found = ", ".join(f"{problem.value} {count}" for problem, count in report.counts.items())
        self.stdout.write(f"healed: {found}" if report.lines else f"nothing to heal ({found})")
