"""Freshness and webhooks: how late webhook changes reach the ERP, and webhooks that stopped arriving."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Count, Max

from alerts.config_keys import FRESHNESS_THRESHOLD_MINUTES, WEBHOOK_SILENCE_MINUTES
from alerts.rules.core import Finding, Severity, minutes, rule
from sync.models import AuditTrail, InboxEvent, QueueItem, SyncRun
from tdscore import config

FRESHNESS_SAMPLE = 5000  # the newest applied webhook changes read, at most: the p95 needs no more


@rule("freshness")
def freshness(now: datetime) -> list[Finding]:
    """p95 of ERP commit minus Zoho's last_modified_time per entity, over the last hour of webhooks.

    Pulled changes are late by design (an hourly pull), so only webhook-applied changes count.
    """
    threshold = config.get(FRESHNESS_THRESHOLD_MINUTES)
    rows = (
        AuditTrail.objects.filter(at__gte=now - timedelta(hours=1), source="webhook", version__isnull=False)
        .order_by("-at")
        .values_list("entity", "object_id", "at", "version")[:FRESHNESS_SAMPLE]
    )
    delays: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for entity, object_id, at, version in rows:
        delays[entity].append(((at - version).total_seconds() / 60, object_id))
    findings = []
    for entity, values in sorted(delays.items()):
        values.sort()
        p95, _ = values[max(0, math.ceil(0.95 * len(values)) - 1)]
        if p95 < threshold:
            continue
        slowest = [object_id for _, object_id in values[-5:]]
        findings.append(
            Finding(
                subject=entity,
                severity=Severity.WARNING,
                title=f"{entity}: changes reach the ERP {p95:.1f} min after Zoho made them (p95)",
                value=round(p95, 1),
                threshold=threshold,
                context={"entity": entity, "object_ids": slowest, "sample": len(values), "reason": "slow apply"},
            )
        )
    return findings


@rule("webhooks_stopped")
def webhooks_stopped(now: datetime) -> list[Finding]:
    """No webhook for a while, yet pulls since then applied changes webhooks should have brought."""
    silence = timedelta(minutes=config.get(WEBHOOK_SILENCE_MINUTES))
    last = InboxEvent.objects.aggregate(at=Max("received_at"))["at"]  # tds_inbox_received
    if last is not None and now - last < silence:
        return []
    runs = SyncRun.objects.filter(
        run_type=SyncRun.RunType.INCREMENTAL,
        status=SyncRun.Status.COMPLETED,
        finished_at__gte=last or now - timedelta(days=1),
    )
    applied = dict(
        QueueItem.objects.filter(sync_run__in=runs, status=QueueItem.Status.COMPLETED)
        .values_list("entity")
        .annotate(n=Count("id"))
        .values_list("entity", "n")
    )
    if not applied:
        return []
    quiet = minutes(now - last) if last else None
    return [
        Finding(
            subject="all",
            severity=Severity.WARNING,
            title=(
                f"No webhook for {quiet} min while pulls applied {sum(applied.values())} changes"
                if last
                else f"No webhook ever received while pulls applied {sum(applied.values())} changes"
            ),
            value=quiet,
            threshold=minutes(silence),
            context={
                "entity": max(applied, key=applied.get),
                "applied_by_pulls": applied,
                "last_webhook": last.isoformat() if last else None,
                "reason": "Zoho webhooks not arriving (workflow rule off, cap reached, URL changed?)",
            },
        )
    ]
