"""Zoho: the circuit breaker, refused credentials, and the daily call and webhook caps."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db.models import Sum

from alerts.config_keys import ZOHO_CAP_ALERT_RATIO, ZOHO_WEBHOOK_DAILY_CAP
from alerts.rules.core import Finding, Severity, rule
from sync import budget
from sync.models import InboxEvent
from sync.zoho import breaker
from sync.zoho.limiter import organization
from sync.zoho.models import BreakerState, ZohoCall
from tdscore import config


def _breaker(now: datetime):
    row = BreakerState.objects.filter(organization_id=organization()).first()
    return row, breaker.state(now)


@rule("breaker_open")
def breaker_open(now: datetime) -> list[Finding]:
    row, state = _breaker(now)
    if state not in (breaker.Circuit.OPEN, breaker.Circuit.HALF_OPEN):
        return []
    return [
        Finding(
            subject=row.organization_id or "zoho",
            severity=Severity.ERROR,
            title=f"Zoho circuit breaker {state.replace('_', '-')}: calls to Zoho are held back",
            # No value or threshold: a state, not a measure; it opens on consecutive failures or on the failure rate.
            context={
                "reason": row.last_failure[:300],
                "consecutive_failures": row.consecutive_failures,
                "open_until": row.open_until.isoformat() if row.open_until else None,
            },
        )
    ]


@rule("zoho_auth")
def zoho_auth(now: datetime) -> list[Finding]:
    row, state = _breaker(now)
    if state != breaker.Circuit.AUTH:
        return []
    return [
        Finding(
            subject=row.organization_id or "zoho",
            severity=Severity.CRITICAL,
            title="Zoho refuses our credentials: nothing is pulled or confirmed until they are fixed",
            value=None,
            threshold=None,
            context={"reason": row.auth_detail[:300], "since": row.auth_failed_at.isoformat()},
        )
    ]


@rule("zoho_quota")
def zoho_quota(now: datetime) -> list[Finding]:
    """Only the reserve of today's Zoho calls is left (the limiter's count, Zoho's own when lower)."""
    s = budget.status(now)
    if s.remaining_today > s.reserve:
        return []
    return [
        Finding(
            subject="api",
            severity=Severity.ERROR,
            title=f"Zoho calls nearly spent: {s.calls_today:,} of {s.daily_cap:,} used, only the reserve is left",
            value=s.calls_today,
            threshold=s.daily_cap - s.reserve,
            context={"reason": f"pulls wait until the reset at {s.reset_at:%H:%M} UTC", "remaining": s.remaining_today},
        )
    ]


@rule("zoho_daily_cap")
def zoho_daily_cap(now: datetime) -> list[Finding]:
    """Webhooks received and API calls made since the Zoho day began, near their daily caps.

    Zoho stops delivering webhooks past 1,000 a day (the changes then only arrive by pull), and
    stops answering the API past the plan's cap.
    """
    ratio = config.get(ZOHO_CAP_ALERT_RATIO)
    status = budget.status(now)
    day_start = status.reset_at - timedelta(days=1)
    received = InboxEvent.objects.filter(received_at__gte=day_start)  # tds_inbox_received
    webhooks = received.count() + (
        InboxEvent.objects.filter(last_duplicate_at__gte=day_start).aggregate(n=Sum("duplicate_count"))["n"] or 0
    )
    calls = ZohoCall.objects.filter(organization_id=organization(), started_at__gte=day_start).count()
    findings = []
    for subject, used, cap, what in [
        ("webhooks", webhooks, config.get(ZOHO_WEBHOOK_DAILY_CAP), "webhooks received"),
        ("api", calls, status.daily_cap, "API calls made"),
    ]:
        threshold = math.ceil(cap * ratio)
        if used >= threshold:
            findings.append(
                Finding(
                    subject=subject,
                    severity=Severity.WARNING,
                    title=f"{used:,} Zoho {what} today, near the daily cap of {cap:,}",
                    value=used,
                    threshold=threshold,
                    context={"reason": f"daily cap {cap}", "day_started": day_start.isoformat()},
                )
            )
    return findings
