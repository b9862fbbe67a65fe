"""Liveness and readiness: GET /health and GET /health/ready.

/health answers whether the database answers. /health/ready adds what an operator wants to know;
only a dead database makes it 503, so a load balancer never takes the webhook receiver out of
rotation for a Zoho or worker problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from sync import schedules
from sync.config_keys import PAUSED_ENTITIES, QUEUE_BACKLOG_THRESHOLD, QUEUE_PROGRESS_PERIOD_SECONDS
from sync.models import QueueItem
from sync.worker import fresh_heartbeats
from sync.zoho import breaker
from tdscore import config
from tdscore.enums import Readiness

logger = logging.getLogger(__name__)


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False


def check_database(now: datetime) -> tuple[Readiness, str]:
    return (Readiness.OK, "answers") if database_answers() else (Readiness.DOWN, "does not answer")


def check_workers(now: datetime) -> tuple[Readiness, str]:
    alive = fresh_heartbeats(now).count()
    return (Readiness.OK, f"{alive} alive") if alive else (Readiness.DEGRADED, "no worker heartbeat")


def check_queue(now: datetime) -> tuple[Readiness, str]:
    """Degraded when the queue stops moving, or when its backlog passes `queue_backlog_threshold`;
    else paused while an operator has paused entities, so a pause is never read as "ok"."""
    waiting = QueueItem.objects.filter(status__in=QueueItem.WAITING)
    depth = waiting.count()
    stalled = stalled_for(now)
    if stalled is not None:
        return (
            Readiness.DEGRADED,
            f"{rows(depth)} waiting; not moving: the next due row has waited {stalled.total_seconds():,.0f} s "
            "and no row finished in that time",
        )
    if depth >= config.get(QUEUE_BACKLOG_THRESHOLD):
        return Readiness.DEGRADED, f"{rows(depth)} waiting"
    paused = config.get(PAUSED_ENTITIES)
    if paused:
        held = waiting.filter(entity__in=paused).count()
        return Readiness.PAUSED, f"{rows(depth)} waiting; paused: {', '.join(paused)} ({rows(held)} held)"
    return Readiness.OK, f"{rows(depth)} waiting"


def rows(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"


def stalled_for(now: datetime) -> timedelta | None:
    """How long the next row to claim has been due, if the queue is not moving; else None.

    Not moving: that row (claim order, paused entities aside: they wait on purpose) has been due for
    over `queue_progress_period_seconds` (after which the queue_stalled alert rule calls it late),
    and no row finished in that time. A deep backlog that drains is moving; a claim that fails on
    every pass or drainers that all died are not. Two cheap queries: the head of tds_queue_due
    (LIMIT 1) and a probe of tds_queue_finished.
    """
    window = timedelta(seconds=config.get(QUEUE_PROGRESS_PERIOD_SECONDS))
    due = QueueItem.objects.due(now).exclude(entity__in=config.get(PAUSED_ENTITIES)).in_claim_order()
    head = due.values_list("next_attempt_at", flat=True).first()
    if head is None or head > now - window:
        return None
    if QueueItem.objects.filter(finished_at__gte=now - window).exists():
        return None
    return now - head


# Each returns (Readiness, detail); the checks of the pipeline below are read directly.
READINESS_CHECKS: dict[str, Callable[[datetime], tuple[Readiness, str]]] = {
    "database": check_database,
    "workers": check_workers,
    "queue": check_queue,
    "zoho": breaker.readiness,
    "zoho_budget": schedules.budget_readiness,
}


def overall(checks: dict[str, dict]) -> Readiness:
    return Readiness.OK if all(c["status"] == Readiness.OK for c in checks.values()) else Readiness.DEGRADED


@require_GET
def health(request):
    if database_answers():
        return JsonResponse({"status": Readiness.OK})
    return JsonResponse({"status": Readiness.DOWN}, status=503)


@require_GET
def ready(request):
    now = timezone.now()
    if not database_answers():
        checks = {"database": {"status": Readiness.DOWN, "detail": "does not answer"}}
        return JsonResponse({"status": Readiness.DOWN, "checks": checks}, status=503)
    checks = {}
    for name, check in READINESS_CHECKS.items():
        try:
            status, detail = check(now)
        except Exception as exc:  # one broken check degrades the answer; it never makes it a 500
            logger.exception("readiness check %s failed", name)
            status, detail = Readiness.DEGRADED, f"check failed: {exc.__class__.__name__}: {exc}"
        checks[name] = {"status": status, "detail": detail}
    return JsonResponse({"status": overall(checks), "checks": checks})
