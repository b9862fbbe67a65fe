"""`manage.py tds_status [--json]`: a health summary in the terminal."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from django.db.models import Count
from django.utils import timezone

from sync import budget
from sync.models import QueueItem, SyncCursor, SyncRun
from tdscore import health


def summary(now) -> dict:
    checks = {}
    for name, check in health.READINESS_CHECKS.items():
        status, detail = check(now)
        checks[name] = {"status": status, "detail": detail}
    latest = {}
    for run in SyncRun.objects.order_by("entity", "-created_at"):
        latest.setdefault(run.entity, run)
    return {
        "status": health.overall(checks),
        "checks": checks,
        "zoho_budget": budget.status(now).as_dict(),
        "queue": dict(QueueItem.objects.values_list("status").annotate(n=Count("id"))),
        "runs": {
            slug: {
                "id": run.pk,
                "type": run.run_type,
                "status": run.status,
                "created_at": run.created_at.isoformat(),
                "calls": run.calls,
                "fetched": run.fetched,
                "queued": run.queued,
                "error": run.error,
            }
            for slug, run in sorted(latest.items())
        },
        "cursors": [
            {
                "entity": c.entity,
                "run_type": c.run_type,
                "watermark": c.watermark.isoformat() if c.watermark else None,
                "last_success_at": c.last_success_at.isoformat() if c.last_success_at else None,
            }
            for c in SyncCursor.objects.order_by("entity", "run_type")
        ],
    }


class Command(BaseCommand):
    help = "Health summary: readiness checks, Zoho budget, queue, latest run per entity."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        data = summary(timezone.now())
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(f"TDS Core: {data['status']}")
        for name, check in data["checks"].items():
            self.stdout.write(f"  {name:<12} {check['status']:<9} {check['detail']}")
        b = data["zoho_budget"]
        exhaustion = b["exhaustion_at"] or "not before the reset"
        self.stdout.write(
            f"Zoho calls today: {b['calls_today']} of {b['daily_cap']} (reserve {b['reserve']}, "
            f"{b['remaining_today']} left); this minute {b['minute_used']}/{b['minute_cap']}; "
            f"resets {b['reset_at']}; runs out {exhaustion}"
        )
        self.stdout.write("Queue: " + (", ".join(f"{k} {v}" for k, v in sorted(data["queue"].items())) or "empty"))
        for slug, run in data["runs"].items():
            self.stdout.write(
                f"  {slug:<13} {run['type']:<14} {run['status']:<9} #{run['id']} {run['created_at']} "
                f"calls {run['calls']} fetched {run['fetched']} queued {run['queued']}"
                + (f" — {run['error'][:80]}" if run["error"] else "")
            )
