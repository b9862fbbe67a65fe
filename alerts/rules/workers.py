"""The workers: whether any still records its heartbeat, and whether the drainers beat while rows wait."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.rules.core import Finding, Liveness, Severity, liveness, rule
from alerts.rules.queue import oldest_due
from sync.config_keys import HEARTBEAT_GRACE_SECONDS, HEARTBEAT_PERIOD_SECONDS
from sync.models import WorkerHeartbeat
from tdscore import config


@rule("worker_heartbeat")
def worker_heartbeat(now: datetime) -> list[Finding]:
    """No worker has beaten for period + grace: nothing applies the queue (healthchecks' "down").

    Each drainer beats under its own id and a dead drainer's row stays behind, so the newest heartbeat
    of any worker is what tells whether one is alive.
    """
    period, grace = config.get(HEARTBEAT_PERIOD_SECONDS), config.get(HEARTBEAT_GRACE_SECONDS)
    newest, age, silent = _newest_beat(now)
    if age is not None and liveness(age, period=period, grace=grace) is not Liveness.DOWN:
        return []
    return [
        Finding(
            subject="workers",
            severity=Severity.CRITICAL,
            title=f"Worker down: no heartbeat {silent}",
            value=round(age.total_seconds()) if age is not None else None,
            threshold=period + grace,
            context={
                "reason": "no worker heartbeat",
                "last_worker": newest.worker_id if newest else "",
                "last_seen": newest.last_seen_at.isoformat() if newest else None,
            },
        )
    ]


@rule("drainers_silent")
def drainers_silent(now: datetime) -> list[Finding]:
    """Rows are due and no drainer has beaten for two heartbeat periods: the drain has stopped.

    Earlier than worker_heartbeat (period + grace), because rows are waiting: a drainer starved of
    its cluster worker (every worker held by something else) beats no more, while acknowledged
    webhooks wait unapplied.
    """
    period = config.get(HEARTBEAT_PERIOD_SECONDS)
    waiting = oldest_due(now)
    if waiting is None:
        return []
    newest, age, silent = _newest_beat(now)
    if age is not None and age < timedelta(seconds=2 * period):
        return []
    return [
        Finding(
            subject="drainers",
            severity=Severity.ERROR,
            title=f"No drainer has beaten {silent} while rows wait to be applied",
            value=round(age.total_seconds()) if age is not None else None,
            threshold=2 * period,
            context={
                "reason": "no drainer heartbeat while rows wait",
                "oldest_due_row": waiting.pk,
                "oldest_due_entity": waiting.entity,
                "due_since": waiting.next_attempt_at.isoformat(),
                "last_drainer": newest.worker_id if newest else "",
            },
        )
    ]


def _newest_beat(now: datetime) -> tuple[WorkerHeartbeat | None, timedelta | None, str]:
    """The newest heartbeat of any worker, its age, and how long the workers have been silent, in words.
    A dead drainer's row stays behind, so only the newest one tells whether any is alive."""
    newest = WorkerHeartbeat.objects.order_by("-last_seen_at").first()
    age = now - newest.last_seen_at if newest else None
    return newest, age, f"for {round(age.total_seconds())} s" if age is not None else "ever"
