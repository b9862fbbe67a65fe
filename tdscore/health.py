"""Liveness and readiness (SPEC §5).

/health answers whether the database answers. /health/ready adds what an operator wants to know;
only a dead database makes it 503, so a load balancer never takes the webhook receiver out of
rotation for a Zoho or worker problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from tdscore import config

logger = logging.getLogger(__name__)
OK, DEGRADED, DOWN = "ok", "degraded", "down"


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False


def check_database(now) -> tuple[str, str]:
    return (OK, "answers") if database_answers() else (DOWN, "does not answer")


def check_workers(now) -> tuple[str, str]:
    from sync.models import WorkerHeartbeat

    window = config.get("heartbeat_period_seconds") + config.get("heartbeat_grace_seconds")
    alive = WorkerHeartbeat.objects.filter(last_seen_at__gte=now - timedelta(seconds=window)).count()
    return (OK, f"{alive} alive") if alive else (DEGRADED, "no worker heartbeat")


def check_queue(now) -> tuple[str, str]:
    from sync.models import QueueItem

    waiting = QueueItem.objects.filter(status__in=QueueItem.WAITING)
    depth = waiting.count()
    if depth >= config.get("queue_backlog_threshold"):
        return DEGRADED, f"{depth} rows waiting"
    return OK, f"{depth} rows waiting"


def check_zoho(now) -> tuple[str, str]:
    from sync.zoho.breaker import readiness

    return readiness(now)


def check_zoho_budget(now) -> tuple[str, str]:
    from sync.budget import readiness

    return readiness(now)


# Later features append theirs (the Zoho breaker and budget). Each returns (status, detail).
READINESS_CHECKS: dict[str, Callable] = {
    "database": check_database,
    "workers": check_workers,
    "queue": check_queue,
    "zoho": check_zoho,
    "zoho_budget": check_zoho_budget,
}


@require_GET
def health(request):
    if database_answers():
        return JsonResponse({"status": OK})
    return JsonResponse({"status": DOWN}, status=503)


@require_GET
def ready(request):
    now = timezone.now()
    if not database_answers():
        checks = {"database": {"status": DOWN, "detail": "does not answer"}}
        return JsonResponse({"status": DOWN, "checks": checks}, status=503)
    checks = {}
    for name, check in READINESS_CHECKS.items():
        try:
            status, detail = check(now)
        except Exception as exc:  # one broken check degrades the answer; it never makes it a 500
            logger.exception("readiness check %s failed", name)
            status, detail = DEGRADED, f"check failed: {exc.__class__.__name__}: {exc}"
        checks[name] = {"status": status, "detail": detail}
    overall = OK if all(c["status"] == OK for c in checks.values()) else DEGRADED
    return JsonResponse({"status": overall, "checks": checks})
