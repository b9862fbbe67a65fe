"""The workers: whether any still records its heartbeat."""

from __future__ import annotations

from datetime import datetime

from alerts.rules.core import Finding, Liveness, Severity, liveness, rule
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
    newest = WorkerHeartbeat.objects.order_by("-last_seen_at").first()
    age = now - newest.last_seen_at if newest else None
    if age is not None and liveness(age, period=period, grace=grace) is not Liveness.DOWN:
        return []
    silent = f"for {round(age.total_seconds())} s" if age is not None else "ever"
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
