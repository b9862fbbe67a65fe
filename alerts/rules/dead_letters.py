"""Dead letters: the share of the last hour's rows that failed, and the unresolved ones per entity."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Count, Q

from alerts.config_keys import DLQ_THRESHOLD, FAILURE_RATE_MIN_ROWS, FAILURE_RATE_THRESHOLD
from alerts.rules.core import Finding, Severity, excerpt, rule
from sync.models import DeadLetter, QueueItem
from tdscore import config


@rule("failure_rate")
def failure_rate(now: datetime) -> list[Finding]:
    """Dead-lettered among the rows finished in the last hour (tds_queue_finished)."""
    threshold = config.get(FAILURE_RATE_THRESHOLD)
    finished = QueueItem.objects.filter(finished_at__gte=now - timedelta(hours=1))
    counts = finished.aggregate(total=Count("id"), failed=Count("id", filter=Q(status=QueueItem.Status.DEAD_LETTER)))
    total, failed = counts["total"], counts["failed"]
    if total < config.get(FAILURE_RATE_MIN_ROWS) or failed / total < threshold or not failed:
        return []
    by_entity = dict(
        finished.filter(status=QueueItem.Status.DEAD_LETTER)
        .values_list("entity")
        .annotate(n=Count("id"))
        .values_list("entity", "n")
    )
    rate = failed / total
    return [
        Finding(
            subject="all",
            severity=Severity.CRITICAL,
            title=f"Failure rate {rate:.1%} over the last hour ({failed} of {total} rows dead-lettered)",
            value=round(rate, 4),
            threshold=threshold,
            context={"entity": max(by_entity, key=by_entity.get), "failed_by_entity": by_entity, "finished": total},
        )
    ]


@rule("dlq_size")
def dlq_size(now: datetime) -> list[Finding]:
    """One finding per entity holding at least `dlq_threshold` unresolved dead letters (tds_dlq_open)."""
    threshold = config.get(DLQ_THRESHOLD)
    open_letters = DeadLetter.objects.unresolved()
    # COUNT(*), not COUNT(id): an index-only scan of tds_dlq_open, never the rows themselves.
    rows = open_letters.values_list("entity", "reason").annotate(n=Count("*"))
    per_entity: dict[str, dict[str, int]] = defaultdict(dict)
    for entity, reason, n in rows:
        per_entity[entity][reason] = n
    findings = []
    for entity, reasons in sorted(per_entity.items()):
        size = sum(reasons.values())
        if size < threshold:
            continue
        reason = max(reasons, key=reasons.get)
        # Down tds_dlq_open (entity, reason, last_failed_at): the newest of its commonest reason.
        latest = open_letters.filter(entity=entity, reason=reason).order_by("-last_failed_at")[:5]
        latest = list(latest.values("id", "object_id", "reason", "error", "payload"))
        findings.append(
            Finding(
                subject=entity,
                severity=Severity.ERROR,
                title=f"{size:,} unresolved dead letter{'' if size == 1 else 's'} for {entity}",
                value=size,
                threshold=threshold,
                context={
                    "entity": entity,
                    "reason": reason,
                    "by_reason": reasons,
                    "object_ids": [row["object_id"] for row in latest if row["object_id"]],
                    "dead_letter_ids": [row["id"] for row in latest],
                    "error": latest[0]["error"][:300],
                    "excerpt": excerpt(latest[0]["payload"]),
                },
            )
        )
    return findings
