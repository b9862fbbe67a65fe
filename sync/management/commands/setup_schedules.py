"""`manage.py setup_schedules`: create or update the django-q2 schedules (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from sync import schedules


class Command(BaseCommand):
    help = "Create or update TDS Core's django-q2 schedules by name (safe to run again)."

    def handle(self, *args, **options):
        for name, created in schedules.install(timezone.now()):
            self.stdout.write(f"{'created' if created else 'updated'} {name}")
