"""The alert rules (SPEC §9). Each reads what it watches, compares it with its threshold from the
runtime configuration and returns findings; it writes nothing. The engine turns findings into alerts.

A finding fires at its threshold (value >= threshold), never below. Every rule is written to cost a
few index probes however large the queue and the dead-letter table grow (bench/check_alerts.py): counts
of waiting rows ride the partial claim index, dead letters the open-DLQ index, and anything "recent"
an index on its timestamp.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from django.db.models import Count, Max, Q, Sum

from alerts.config_keys import (
    DLQ_THRESHOLD,
    FAILURE_RATE_MIN_ROWS,
    FAILURE_RATE_THRESHOLD,
    FRESHNESS_THRESHOLD_MINUTES,
    HEAL_REPEAT_RUNS,
    RECONCILIATION_DRIFT_THRESHOLD,
    STUCK_PROCESSING_MINUTES,
    SYNC_LAG_THRESHOLD_MINUTES,
    WEBHOOK_SILENCE_MINUTES,
    ZOHO_CAP_ALERT_RATIO,
    ZOHO_WEBHOOK_DAILY_CAP,
)
from alerts.models import Alert, AlertDelivery
from sync import healing
from sync.config_keys import (
    HEARTBEAT_GRACE_SECONDS,
    HEARTBEAT_PERIOD_SECONDS,
    INCREMENTAL_SYNC_INTERVAL_MINUTES,
    PAUSED_ENTITIES,
    QUEUE_BACKLOG_THRESHOLD,
    QUEUE_PROGRESS_GRACE_SECONDS,
    QUEUE_PROGRESS_PERIOD_SECONDS,
)
from sync.models import AuditTrail, DeadLetter, InboxEvent, QueueItem, SyncCursor, SyncRun, WorkerHeartbeat
from tdscore import config
from tdscore.models import Metric

Severity = Alert.Severity
EXCERPT_CHARS = 200
SECRET_WORDS = ("token", "secret", "password", "authorization", "api_key")


@dataclass(frozen=True)
class Finding:
    rule: str
    subject: str
    severity: str
    title: str
    value: float | None = None
    threshold: float | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}:{self.subject}"[:200]


Rule = Callable[[datetime], list[Finding]]
RULES: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[name] = fn
        return fn

    return register


def excerpt(payload: Any) -> str:
    """A short look at a payload, with anything that looks like a credential blanked."""
    if isinstance(payload, dict):
        payload = {k: "***" if any(w in str(k).lower() for w in SECRET_WORDS) else v for k, v in payload.items()}
    text = json.dumps(payload, default=str, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


class Liveness(Enum):
    """healthchecks' states for something expected to report every `period`, with `grace` to spare."""

    UP = "up"
    LATE = "late"  # past its period, within grace: shown, nobody told yet
    DOWN = "down"  # past period + grace: alert


def liveness(age: timedelta, *, period: float, grace: float) -> Liveness:
    seconds = age.total_seconds()
    if seconds <= period:
        return Liveness.UP
    return Liveness.LATE if seconds <= period + grace else Liveness.DOWN


def minutes(td: timedelta) -> float:
    return round(td.total_seconds() / 60, 1)


# --- The queue ----------------------------------------------------------------------------------


def oldest_due(now: datetime) -> QueueItem | None:
    """The waiting row due longest ago, outside paused entities (their rows wait by design).

    Read down the claim index (tds_queue_due) one priority at a time: each probe is the first
    entry of that priority, so a backlog of any size costs one probe per priority in use.
    """
    waiting = QueueItem.objects.filter(status__in=QueueItem.WAITING, next_attempt_at__lte=now)
    paused = config.get(PAUSED_ENTITIES)
    if paused:
        waiting = waiting.exclude(entity__in=paused)
    oldest, below = None, None
    while True:
        probe = waiting if below is None else waiting.filter(priority__lt=below)
        row = probe.order_by("-priority", "next_attempt_at", "id").first()
        if row is None:
            return oldest
        if oldest is None or row.next_attempt_at < oldest.next_attempt_at:
            oldest = row
        below = row.priority


@rule("queue_backlog")
def queue_backlog(now: datetime) -> list[Finding]:
    threshold = config.get(QUEUE_BACKLOG_THRESHOLD)
    # GROUP BY entity over the waiting rows only (tds_queue_status_entity).
    by_entity = dict(
        QueueItem.objects.filter(status__in=QueueItem.WAITING)
        .values_list("entity")
        .annotate(n=Count("id"))
        .values_list("entity", "n")
    )
    waiting = sum(by_entity.values())
    if waiting < threshold:
        return []
    biggest = max(by_entity, key=by_entity.get)
    return [
        Finding(
            "queue_backlog",
            "all",
            Severity.WARNING,
            f"Queue backlog: {waiting:,} rows waiting",
            waiting,
            threshold,
            {"entity": biggest, "by_entity": by_entity, "reason": "more rows waiting than the workers apply"},
        )
    ]


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
            "failure_rate",
            "all",
            Severity.CRITICAL,
            f"Failure rate {rate:.1%} over the last hour ({failed} of {total} rows dead-lettered)",
            round(rate, 4),
            threshold,
            {"entity": max(by_entity, key=by_entity.get), "failed_by_entity": by_entity, "finished": total},
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
                "dlq_size",
                entity,
                Severity.ERROR,
                f"{size:,} unresolved dead letters for {entity}",
                size,
                threshold,
                {
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


@rule("sync_lag")
def sync_lag(now: datetime) -> list[Finding]:
    """The oldest due row's wait, and each incremental cursor's last success, against the lag threshold.

    A cursor is expected to succeed every `incremental_sync_interval_minutes`; the lag threshold is the
    grace on top of that, so an hourly pull is not "late" for 45 minutes of every hour.
    """
    lag = timedelta(minutes=config.get(SYNC_LAG_THRESHOLD_MINUTES))
    findings = []
    row = oldest_due(now)
    if row is not None and now - row.next_attempt_at >= lag:
        waited = minutes(now - row.next_attempt_at)
        findings.append(
            Finding(
                "sync_lag",
                "queue",
                Severity.WARNING,
                f"Oldest due row has waited {waited} min",
                waited,
                minutes(lag),
                {"entity": row.entity, "object_ids": [row.object_id], "excerpt": excerpt(row.payload)},
            )
        )
    expected = timedelta(minutes=config.get(INCREMENTAL_SYNC_INTERVAL_MINUTES)) + lag
    cursors = SyncCursor.objects.filter(run_type=SyncRun.RunType.INCREMENTAL)
    for cursor in cursors:
        since = cursor.last_success_at or cursor.last_run_at
        if since is None or now - since < expected:
            continue
        findings.append(
            Finding(
                "sync_lag",
                f"cursor:{cursor.entity}",
                Severity.WARNING,
                f"{cursor.entity}: no successful incremental pull for {minutes(now - since)} min",
                minutes(now - since),
                minutes(expected),
                {"entity": cursor.entity, "reason": "pull not succeeding", "watermark": str(cursor.watermark)},
            )
        )
    return findings


@rule("queue_stalled")
def queue_stalled(now: datetime) -> list[Finding]:
    """Rows due for longer than period + grace, nothing finished meanwhile, and workers say they are alive."""
    period, grace = config.get(QUEUE_PROGRESS_PERIOD_SECONDS), config.get(QUEUE_PROGRESS_GRACE_SECONDS)
    window = timedelta(seconds=period + grace)
    stuck = oldest_due(now - window)
    if stuck is None or not _fresh_heartbeats(now).exists():
        return []
    last = QueueItem.objects.filter(finished_at__isnull=False).aggregate(at=Max("finished_at"))["at"]
    age = now - (last or stuck.next_attempt_at)
    if liveness(age, period=period, grace=grace) is not Liveness.DOWN:
        return []
    return [
        Finding(
            "queue_stalled",
            "all",
            Severity.ERROR,
            f"Queue not moving: nothing finished for {minutes(age)} min while workers report alive",
            minutes(age),
            minutes(window),
            {"entity": stuck.entity, "object_ids": [stuck.object_id], "reason": "workers alive but not applying"},
        )
    ]


@rule("stuck_processing")
def stuck_processing(now: datetime) -> list[Finding]:
    """Leases expired long ago (heal is not recovering them) and runs whose heartbeat stopped."""
    after = timedelta(minutes=config.get(STUCK_PROCESSING_MINUTES))
    findings = []
    leases = QueueItem.objects.filter(
        status=QueueItem.Status.PROCESSING, locked_until__lte=now - after
    )  # tds_queue_leases
    count = leases.count()
    if count:
        sample = list(leases.values_list("entity", "object_id")[:5])
        findings.append(
            Finding(
                "stuck_processing",
                "queue",
                Severity.ERROR,
                f"{count} queue rows stuck in processing (lease expired over {minutes(after)} min ago)",
                count,
                1,
                {"entity": sample[0][0], "object_ids": [o for _, o in sample], "reason": "lease expired"},
            )
        )
    runs = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, heartbeat_at__lte=now - after)
    for run in runs[:20]:
        findings.append(
            Finding(
                "stuck_processing",
                f"run:{run.pk}",
                Severity.ERROR,
                f"{run.run_type} run #{run.pk} of {run.entity} silent for {minutes(now - run.heartbeat_at)} min",
                minutes(now - run.heartbeat_at),
                minutes(after),
                {"entity": run.entity, "run_id": run.pk, "reason": "run heartbeat stopped"},
            )
        )
    return findings


# --- Workers ------------------------------------------------------------------------------------


def _fresh_heartbeats(now: datetime):
    grace = config.get(HEARTBEAT_PERIOD_SECONDS) + config.get(HEARTBEAT_GRACE_SECONDS)
    return WorkerHeartbeat.objects.filter(last_seen_at__gte=now - timedelta(seconds=grace))


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
            "worker_heartbeat",
            "workers",
            Severity.CRITICAL,
            f"Worker down: no heartbeat {silent}",
            round(age.total_seconds()) if age is not None else None,
            period + grace,
            {
                "reason": "no worker heartbeat",
                "last_worker": newest.worker_id if newest else "",
                "last_seen": newest.last_seen_at.isoformat() if newest else None,
            },
        )
    ]


# --- Freshness and webhooks ---------------------------------------------------------------------

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
                "freshness",
                entity,
                Severity.WARNING,
                f"{entity}: changes reach the ERP {p95:.1f} min after Zoho made them (p95)",
                round(p95, 1),
                threshold,
                {"entity": entity, "object_ids": slowest, "sample": len(values), "reason": "slow apply"},
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
            "webhooks_stopped",
            "all",
            Severity.WARNING,
            f"No webhook for {quiet} min while pulls applied {sum(applied.values())} changes"
            if last
            else f"No webhook ever received while pulls applied {sum(applied.values())} changes",
            quiet,
            minutes(silence),
            {
                "entity": max(applied, key=applied.get),
                "applied_by_pulls": applied,
                "last_webhook": last.isoformat() if last else None,
                "reason": "Zoho webhooks not arriving (workflow rule off, cap reached, URL changed?)",
            },
        )
    ]


# --- Zoho -----------------------------------------------------------------------------------------


def _breaker(now: datetime):
    from sync.zoho import breaker
    from sync.zoho.limiter import organization
    from sync.zoho.models import BreakerState

    row = BreakerState.objects.filter(organization_id=organization()).first()
    return row, breaker.state(now)


@rule("breaker_open")
def breaker_open(now: datetime) -> list[Finding]:
    from sync.zoho import breaker

    row, state = _breaker(now)
    if state not in (breaker.Circuit.OPEN, breaker.Circuit.HALF_OPEN):
        return []
    return [
        Finding(
            "breaker_open",
            row.organization_id or "zoho",
            Severity.ERROR,
            f"Zoho circuit breaker {state.replace('_', '-')}: calls to Zoho are held back",
            None,  # a state, not a measure: it opens on consecutive failures or on the failure rate
            None,
            {
                "reason": row.last_failure[:300],
                "consecutive_failures": row.consecutive_failures,
                "open_until": row.open_until.isoformat() if row.open_until else None,
            },
        )
    ]


@rule("zoho_auth")
def zoho_auth(now: datetime) -> list[Finding]:
    from sync.zoho import breaker

    row, state = _breaker(now)
    if state != breaker.Circuit.AUTH:
        return []
    return [
        Finding(
            "zoho_auth",
            row.organization_id or "zoho",
            Severity.CRITICAL,
            "Zoho refuses our credentials: nothing is pulled or confirmed until they are fixed",
            None,
            None,
            {"reason": row.auth_detail[:300], "since": row.auth_failed_at.isoformat()},
        )
    ]


@rule("zoho_quota")
def zoho_quota(now: datetime) -> list[Finding]:
    """Only the reserve of today's Zoho calls is left (the limiter's count, Zoho's own when lower)."""
    from sync import budget

    s = budget.status(now)
    if s.remaining_today > s.reserve:
        return []
    return [
        Finding(
            "zoho_quota",
            "api",
            Severity.ERROR,
            f"Zoho calls nearly spent: {s.calls_today:,} of {s.daily_cap:,} used, only the reserve is left",
            s.calls_today,
            s.daily_cap - s.reserve,
            {"reason": f"pulls wait until the reset at {s.reset_at:%H:%M} UTC", "remaining": s.remaining_today},
        )
    ]


@rule("zoho_daily_cap")
def zoho_daily_cap(now: datetime) -> list[Finding]:
    """Webhooks received and API calls made since the Zoho day began, near their daily caps.

    Zoho stops delivering webhooks past 1,000 a day (the changes then only arrive by pull), and
    stops answering the API past the plan's cap.
    """
    from sync import budget
    from sync.zoho.limiter import organization
    from sync.zoho.models import ZohoCall

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
                    "zoho_daily_cap",
                    subject,
                    Severity.WARNING,
                    f"{used:,} Zoho {what} today, near the daily cap of {cap:,}",
                    used,
                    threshold,
                    {"reason": f"daily cap {cap}", "day_started": day_start.isoformat()},
                )
            )
    return findings


# --- Reconciliation and healing -----------------------------------------------------------------


@rule("reconciliation_drift")
def reconciliation_drift(now: datetime) -> list[Finding]:
    """The latest reconciliation of each entity found Zoho and the ERP apart."""
    threshold = config.get(RECONCILIATION_DRIFT_THRESHOLD)
    runs = SyncRun.objects.filter(
        run_type=SyncRun.RunType.RECONCILIATION,
        status=SyncRun.Status.COMPLETED,
        created_at__gte=now - timedelta(days=8),  # the latest per entity; older ones were superseded
    ).order_by("entity", "-created_at")
    latest: dict[str, SyncRun] = {}
    for run in runs.only("id", "entity", "drift_report"):
        latest.setdefault(run.entity, run)
    findings = []
    for entity, run in sorted(latest.items()):
        report = run.drift_report or {}
        drift = report.get("drift", 0)
        if drift < threshold:
            continue
        ids = [
            i
            for bucket in report.get("buckets", {}).values()
            for kind in bucket.values()
            if isinstance(kind, dict)
            for i in kind.get("ids", [])
        ]
        findings.append(
            Finding(
                "reconciliation_drift",
                entity,
                Severity.WARNING,
                f"{entity}: reconciliation #{run.pk} found {drift} records apart from Zoho",
                drift,
                threshold,
                {
                    "entity": entity,
                    "run_id": run.pk,
                    "totals": report.get("totals", {}),
                    "object_ids": ids[:10],
                    "reason": "repaired" if report.get("repair") else "not repaired",
                },
            )
        )
    return findings


@rule("healing_repeats")
def healing_repeats(now: datetime) -> list[Finding]:
    """`heal` keeps finding the same kind of problem: its metric (sync.healing.Problem.metric) > 0 the last N runs."""
    runs = config.get(HEAL_REPEAT_RUNS)
    recent = Metric.objects.filter(
        name__startswith=healing.METRIC_PREFIX, at__gte=now - timedelta(days=1)
    )  # tds_metric_name_at
    findings = []
    for name in sorted(set(recent.values_list("name", flat=True))):
        values = list(Metric.objects.filter(name=name).order_by("-at").values_list("value", flat=True)[:runs])
        if len(values) < runs or min(values) <= 0:
            continue
        problem = name.removeprefix(healing.METRIC_PREFIX)
        findings.append(
            Finding(
                "healing_repeats",
                problem,
                Severity.WARNING,
                f"heal found {problem.replace('_', ' ')} {runs} runs in a row (latest {values[0]:g})",
                values[0],
                runs,
                {"reason": f"{problem} keeps coming back: find its cause", "last_counts": values},
            )
        )
    return findings


# --- The alert channels themselves ----------------------------------------------------------------


@rule("channel_failing")
def channel_failing(now: datetime) -> list[Finding]:
    """A channel's newest finished notification failed: refused for good or out of attempts."""
    from alerts import channels

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
                "channel_failing",
                name,
                Severity.ERROR,
                f"Alert channel {name} is not delivering",
                None,
                None,
                {
                    "channel": name,
                    "reason": last["error"][:300],
                    "delivery_id": last["id"],
                    "alert_id": last["alert_id"],
                },
            )
        )
    return findings
