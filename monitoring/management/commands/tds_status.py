"""`manage.py tds_status [--json] [--host H]`: a health summary in the terminal."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from monitoring import health, registry, stats
from monitoring.rollups import Lag
from sync import entities, parents, schedules
from sync.config_keys import PAUSED_ENTITIES
from sync.models import DeadLetter, ParentWait, QueueItem, SyncCursor, SyncRun, WorkerHeartbeat
from sync.worker import fresh_heartbeats
from tdscore import config
from tdscore.enums import Readiness
from tdscore.models import Configuration

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Zoho has no workflow-rule webhooks for price lists and users: pulls and reconciliation carry them.
NO_WEBHOOKS = {"prices", "users"}


FRESHNESS_LABELS = {
    Lag.SINCE_MODIFIED: "after Zoho's change",
    Lag.SINCE_RECEIVED: "after the webhook",
    Lag.BACKFILL: "old records pulled (not lag)",
}


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 120 else f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _age(now: datetime, value: datetime | None) -> float | None:
    return round((now - value).total_seconds(), 1) if value else None


def summary(now: datetime, *, host: str | None = None) -> dict:
    checks = {}
    for name, check in health.READINESS_CHECKS.items():
        status, detail = check(now)
        checks[name] = {"status": status, "detail": detail}
    return {
        "status": health.overall(checks),
        "at": now.isoformat(),
        "checks": checks,
        "zoho_budget": schedules.budget_status(now).as_dict(),
        "queue": _queue(now),
        "paused": _paused(),
        "dead_letters": dict(
            DeadLetter.objects.unresolved().values_list("reason").annotate(n=Count("id")).order_by("reason")
        ),
        "workers": _workers(now),
        "cluster": schedules.worker_split(),
        "runs": _latest_runs(),
        "statistics": _statistics(),
        "freshness": stats.freshness_by_entity(now),
        "parents_waiting": _parents_waiting(now),
        "cursors": _cursors(now),
        "schedules": {"stretched": [vars(s) for s in schedules.plan().stretches]},
        "webhooks": _webhook_urls(host),
        **{name: section(now) for name, section in registry.status_sections.items()},
    }


def _queue(now: datetime) -> dict:
    by_status = dict(QueueItem.objects.values_list("status").annotate(n=Count("id")).order_by("status"))
    oldest = QueueItem.objects.filter(status__in=QueueItem.WAITING).aggregate(at=Min("created_at"))["at"]
    return {"by_status": by_status, "oldest_waiting_age_seconds": _age(now, oldest)}


def _parents_waiting(now: datetime) -> dict:
    """Parents stored rows reference and that are not stored yet: all, those heal will fetch at its
    next round, and those Zoho does not have."""
    return {
        "count": stats.parents_waiting(),
        "overdue": parents.overdue(now).count(),
        "missing_in_zoho": ParentWait.objects.filter(missing_in_zoho_at__isnull=False).count(),
    }


def _paused() -> dict:
    """The entities whose changes wait, and who paused them when (the key's last change)."""
    row = Configuration.objects.filter(key=PAUSED_ENTITIES.name).first()
    waiting = QueueItem.objects.filter(status__in=QueueItem.WAITING, entity__in=config.get(PAUSED_ENTITIES))
    return {
        "entities": config.get(PAUSED_ENTITIES),
        "rows_held": waiting.count(),
        "since": _iso(row.updated_at) if row and row.updated_at else None,
        "by": str(row.updated_by) if row and row.updated_by else None,
    }


def _workers(now: datetime) -> list[dict]:
    alive = set(fresh_heartbeats(now).values_list("pk", flat=True))
    return [
        {
            "worker_id": w.worker_id,
            "host": w.hostname,
            "pid": w.pid,
            "alive": w.pk in alive,
            "last_seen": _iso(w.last_seen_at),
            "age_seconds": _age(now, w.last_seen_at),
            "rows_processed": w.rows_processed,
        }
        for w in WorkerHeartbeat.objects.order_by("-last_seen_at")
    ]


def _latest_runs() -> dict:
    latest: dict[str, SyncRun] = {}
    for run in SyncRun.objects.order_by("entity", "-created_at"):
        latest.setdefault(run.entity, run)
    return {
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
    }


def _statistics() -> dict:
    """The statistics comparison: Zoho's and the ERP's counts per entity, from the last reconciliation."""
    out = {}
    done = SyncRun.objects.filter(run_type=SyncRun.RunType.RECONCILIATION, status=SyncRun.Status.COMPLETED)
    for run in done.order_by("entity", "-finished_at"):
        if run.entity in out or not run.drift_report:
            continue
        report = run.drift_report
        out[run.entity] = {
            "zoho": report.get("zoho"),
            "erp": report.get("erp"),
            "drift": report.get("drift"),
            "at": _iso(run.finished_at),
        }
    return dict(sorted(out.items()))


def _cursors(now: datetime) -> list[dict]:
    return [
        {
            "entity": c.entity,
            "run_type": c.run_type,
            "watermark": _iso(c.watermark),
            "last_success_at": _iso(c.last_success_at),
            "lag_seconds": _age(now, c.last_success_at),
        }
        for c in SyncCursor.objects.order_by("entity", "run_type")
    ]


def _webhook_urls(host: str | None) -> dict[str, str]:
    base = f"https://{host}" if host else settings.TDS_BASE_URL.rstrip("/")
    return {
        slug: f"{base}{reverse('webhook', kwargs={'entity': slug})}"
        for slug in entities.ENTITIES
        if slug not in NO_WEBHOOKS
    }


class Command(BaseCommand):
    help = (
        "Health summary: readiness, Zoho budget, queue, dead letters, alerts, workers, runs, cursors, "
        "stretched schedules and the webhook URLs to enter in Zoho."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--host", help="public host name for the webhook URLs (default: TDS_BASE_URL's)")

    def handle(self, *args, **options):
        data = summary(timezone.now(), host=options["host"])
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.write_health(data)
        self.write_pipeline(data)
        self.write_sync(data)

    def flag(self, status: str, text: str | None = None) -> str:
        """Coloured by status on a terminal (Django leaves it plain when stdout is not a TTY)."""
        style = {
            Readiness.OK: self.style.SUCCESS,
            Readiness.DEGRADED: self.style.WARNING,
            Readiness.PAUSED: self.style.WARNING,
        }.get(status, self.style.ERROR)
        return style(text or status)

    @staticmethod
    def when(iso: str | None, now: datetime) -> str:
        """An ISO time as an operator reads it: local (TIME_ZONE), to the second, and how long ago."""
        if iso is None:
            return "never"
        at = datetime.fromisoformat(iso)
        local = timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S %Z")
        return f"{local} ({timesince(at, now)} ago)" if at <= now else local

    def write_health(self, data: dict) -> None:
        self.stdout.write(f"TDS Core: {self.flag(data['status'])}")
        for name, check in data["checks"].items():
            padded = f"{check['status']:<9}"
            self.stdout.write(f"  {name:<12} {self.flag(check['status'], padded)} {check['detail']}")
        b, now = data["zoho_budget"], datetime.fromisoformat(data["at"])
        exhaustion = self.when(b["exhaustion_at"], now) if b["exhaustion_at"] else "not before the reset"
        self.stdout.write(
            f"Zoho calls today: {b['calls_today']:,} of {b['daily_cap']:,} (reserve {b['reserve']:,}, "
            f"{b['remaining_today']:,} left); this minute {b['minute_used']}/{b['minute_cap']}; "
            f"resets {self.when(b['reset_at'], now)}; runs out {exhaustion}"
        )

    def write_pipeline(self, data: dict) -> None:
        q = data["queue"]
        counts = ", ".join(f"{k} {v}" for k, v in q["by_status"].items()) or "empty"
        oldest = q["oldest_waiting_age_seconds"]
        self.stdout.write(f"Queue: {counts}" + (f"; oldest waiting {oldest:.0f} s" if oldest is not None else ""))
        paused = data["paused"]
        if paused["entities"]:
            since = self.when(paused["since"], datetime.fromisoformat(data["at"])) if paused["since"] else "?"
            self.stdout.write(
                self.style.WARNING(
                    f"Paused: {', '.join(paused['entities'])} since {since}"
                    + (f" by {paused['by']}" if paused["by"] else "")
                    + f"; {paused['rows_held']:,} rows held (resume_entity to apply them)"
                )
            )
        waiting = data["parents_waiting"]
        self.stdout.write(
            f"Parents awaited: {waiting['count']:,} ({waiting['overdue']:,} due a fetch from Zoho, "
            f"{waiting['missing_in_zoho']:,} missing in Zoho)"
        )
        dead = ", ".join(f"{k} {v}" for k, v in data["dead_letters"].items())
        self.stdout.write("Dead letters: " + (self.style.WARNING(dead) if dead else "none unresolved"))
        alerts = data.get("alerts", [])
        self.stdout.write(f"Alerts: {len(alerts)} open")
        for a in alerts:
            last = self.when(a["last_seen"], datetime.fromisoformat(data["at"]))
            line = f"  [{a['severity']}] {a['title']} ({a['status']}, x{a['occurrences']:,}, last {last})"
            self.stdout.write(self.style.ERROR(line) if a["severity"] in ("error", "critical") else line)
        self.write_freshness(data["freshness"])
        self.stdout.write(f"Workers: {sum(w['alive'] for w in data['workers'])} alive; {schedules.worker_line()}")
        for w in data["workers"]:
            state = self.flag(Readiness.OK, "alive") if w["alive"] else self.flag(Readiness.DOWN, "silent")
            self.stdout.write(f"  {w['worker_id']:<40} {state} last seen {w['age_seconds']:.0f} s ago")

    def write_freshness(self, freshness: dict) -> None:
        if not freshness:
            self.stdout.write("Freshness (last hour): nothing applied")
            return
        self.stdout.write("Freshness (last hour), p50 / p95:")
        for entity, lags in freshness.items():
            parts = [
                f"{label} {_seconds(lags[lag]['p50_seconds'])} / {_seconds(lags[lag]['p95_seconds'])} "
                f"({lags[lag]['count']})"
                for lag, label in FRESHNESS_LABELS.items()
                if lag in lags
            ]
            self.stdout.write(f"  {entity:<13} " + " · ".join(parts))

    def write_sync(self, data: dict) -> None:
        now = datetime.fromisoformat(data["at"])
        self.stdout.write("Latest runs:")
        for slug, run in data["runs"].items():
            self.stdout.write(
                f"  {slug:<13} {run['type']:<14} {run['status']:<9} #{run['id']} {self.when(run['created_at'], now)} "
                f"calls {run['calls']:,} fetched {run['fetched']:,} queued {run['queued']:,}"
                + (f" — {run['error'][:80]}" if run["error"] else "")
            )
        if data["statistics"]:
            self.stdout.write("Statistics comparison (last reconciliation):")
        for slug, counts in data["statistics"].items():
            self.stdout.write(
                f"  {slug:<13} Zoho {counts['zoho']} · ERP {counts['erp']} · drift {counts['drift']} "
                f"({self.when(counts['at'], now)})"
            )
        for c in data["cursors"]:
            watermark = self.when(c["watermark"], now) if c["watermark"] else "none yet"
            success = (
                f"last success {self.when(c['last_success_at'], now)}" if c["last_success_at"] else "never succeeded"
            )
            self.stdout.write(f"  cursor {c['entity']}/{c['run_type']}: watermark {watermark}, {success}")
        for stretch in data["schedules"]["stretched"]:
            self.stdout.write(self.style.WARNING(schedules.Stretch(**stretch).line()))
        self.stdout.write("Webhook URLs to enter in Zoho (workflow rules → webhooks):")
        if any(urlsplit(url).hostname in LOOPBACK for url in data["webhooks"].values()):
            self.stdout.write(
                self.style.WARNING(
                    f"  Zoho cannot reach {settings.TDS_BASE_URL}: set TDS_BASE_URL (or --host) to the address "
                    "it reaches TDS Core at"
                )
            )
        for slug, url in data["webhooks"].items():
            self.stdout.write(f"  {slug:<13} {url}")
