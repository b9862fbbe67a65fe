"""`manage.py setup_schedules`: create or update the django-q2 schedules (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from sync import schedules


class Command(BaseCommand):
    help = "Create or update TDS Core's django-q2 schedules by name (safe to run again); says which were stretched."

    def handle(self, *args, **options):
        for name, created in schedules.install(timezone.now()):
            self.stdout.write(f"{'created' if created else 'updated'} {name}")
        self.stdout.write(schedules.worker_line())
        fitted = schedules.plan()
        for stretch in fitted.stretches:
            self.stdout.write(self.style.WARNING(stretch.line()))
        if not fitted.fits:
            self.stdout.write(
                self.style.ERROR(
                    f"even stretched, the schedules need about {fitted.calls_per_day:,.0f} Zoho calls a day, more "
                    f"than the {fitted.allowance:,} allowed: runs will be deferred to the next day (raise ZOHO_PLAN)"
                )
            )
