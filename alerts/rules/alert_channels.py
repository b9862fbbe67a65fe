"""The alert channels themselves: one whose notifications stopped going out."""

from __future__ import annotations

from datetime import datetime

from alerts import channels
from alerts.models import AlertDelivery
from alerts.rules.core import Finding, Severity, rule


@rule("channel_failing")
def channel_failing(now: datetime) -> list[Finding]:
    """A channel's newest finished notification failed: refused for good or out of attempts."""
    findings = []
    for name in channels.enabled():
        last = (
            AlertDelivery.objects.filter(channel=name)
            .exclude(status=AlertDelivery.Status.PENDING)
            .order_by("-id")
            .values("id", "status", "error", "alert_id")
            .first()
        )
        if last is None or last["status"] != AlertDelivery.Status.FAILED:
            continue
        findings.append(
            Finding(
                subject=name,
                severity=Severity.ERROR,
                title=f"Alert channel {name} is not delivering",
                value=None,
                threshold=None,
                context={
                    "channel": name,
                    "reason": last["error"][:300],
                    "delivery_id": last["id"],
                    "alert_id": last["alert_id"],
                },
            )
        )
    return findings
