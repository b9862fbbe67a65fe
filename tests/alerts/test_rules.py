"""Each rule fires at its threshold and not below, and its alert resolves once the condition clears.

A case builds the world one step short of the threshold or exactly at it, and can clear it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from alerts import engine, rules
from alerts.config_keys import (
    ALERT_CLEAR_EVALUATIONS,
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
from alerts.models import Alert
from alerts.rules import core
from sync.config_keys import (
    HEARTBEAT_GRACE_SECONDS,
    HEARTBEAT_PERIOD_SECONDS,
    INCREMENTAL_SYNC_INTERVAL_MINUTES,
    PAUSED_ENTITIES,
    QUEUE_BACKLOG_THRESHOLD,
    QUEUE_PROGRESS_GRACE_SECONDS,
    QUEUE_PROGRESS_PERIOD_SECONDS,
)
from sync.models import AuditTrail, DeadLetter, InboxEvent, QueueItem, SyncRun, WorkerHeartbeat
from sync.zoho.models import BreakerState, LimiterState, ZohoCall
from tdscore import config
from tdscore.models import Metric
from tests import factories

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ORG = "60012345"


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def pending_rows(n: int, **fields) -> list[QueueItem]:
    rows = [factories.queue_item(object_id=f"p{i}", now=NOW) for i in range(n)]
    if fields:
        QueueItem.objects.filter(pk__in=[r.pk for r in rows]).update(**fields)
    return rows


# --- the cases: build(at_threshold) makes the world; clear() puts it right ------------------------


def backlog(at: bool) -> None:
    config.update(QUEUE_BACKLOG_THRESHOLD, 3)
    pending_rows(3 if at else 2)


def finish_all() -> None:
    QueueItem.objects.update(status=QueueItem.Status.COMPLETED, finished_at=ago(hours=2))


def failure_rate(at: bool) -> None:
    config.update_many({FAILURE_RATE_THRESHOLD: 0.25, FAILURE_RATE_MIN_ROWS: 4})
    rows = pending_rows(4 if at else 5, status=QueueItem.Status.COMPLETED, finished_at=ago(minutes=30))
    QueueItem.objects.filter(pk=rows[0].pk).update(status=QueueItem.Status.DEAD_LETTER)


def dlq(at: bool) -> None:
    config.update(DLQ_THRESHOLD, 2)
    for n in range(2 if at else 1):
        factories.dead_letter(queue_item=factories.queue_item(object_id=f"d{n}"))


def resolve_dead_letters() -> None:
    DeadLetter.objects.update(resolved_at=NOW, resolution=DeadLetter.Resolution.DISCARDED)


def lag_oldest_pending(at: bool) -> None:
    config.update(SYNC_LAG_THRESHOLD_MINUTES, 15)
    pending_rows(1, next_attempt_at=ago(minutes=15 if at else 14))


def lag_cursor(at: bool) -> None:
    config.update_many({SYNC_LAG_THRESHOLD_MINUTES: 15, INCREMENTAL_SYNC_INTERVAL_MINUTES: 60})
    factories.sync_cursor("invoices", last_success_at=ago(minutes=75 if at else 74))


def fresh_cursors() -> None:
    from sync.models import SyncCursor

    SyncCursor.objects.update(last_success_at=NOW)


def live_worker() -> None:
    WorkerHeartbeat.objects.all().delete()
    factories.worker_heartbeat(last_seen_at=NOW)


def stalled(at: bool) -> None:
    config.update_many({QUEUE_PROGRESS_PERIOD_SECONDS: 60, QUEUE_PROGRESS_GRACE_SECONDS: 60})
    live_worker()
    done = pending_rows(1, status=QueueItem.Status.COMPLETED)
    QueueItem.objects.filter(pk=done[0].pk).update(finished_at=ago(seconds=121 if at else 120))
    factories.queue_item(object_id="waiting", now=ago(minutes=10))


def progress() -> None:
    QueueItem.objects.filter(status=QueueItem.Status.COMPLETED).update(finished_at=NOW)


def stuck_lease(at: bool) -> None:
    config.update(STUCK_PROCESSING_MINUTES, 15)
    pending_rows(1, status=QueueItem.Status.PROCESSING, locked_until=ago(minutes=15 if at else 14))


def stuck_run(at: bool) -> None:
    config.update(STUCK_PROCESSING_MINUTES, 15)
    factories.sync_run(status=SyncRun.Status.RUNNING, heartbeat_at=ago(minutes=15 if at else 14))


def finish_processing() -> None:
    QueueItem.objects.update(status=QueueItem.Status.COMPLETED, finished_at=NOW)
    SyncRun.objects.update(status=SyncRun.Status.COMPLETED)


def worker_down(at: bool) -> None:
    config.update_many({HEARTBEAT_PERIOD_SECONDS: 30, HEARTBEAT_GRACE_SECONDS: 90})
    factories.worker_heartbeat(last_seen_at=ago(seconds=121 if at else 120))


def freshness(at: bool) -> None:
    config.update(FRESHNESS_THRESHOLD_MINUTES, 15)
    for n in range(20):  # p95 of 20 delays is the 19th: one slow change among them does not fire
        delay = 15 if at and n >= 1 else 14 if n >= 1 else 1
        factories.audit_row(object_id=f"f{n}", at=ago(minutes=1), version=ago(minutes=1 + delay), source="webhook")


def fast_again() -> None:
    # The audit trail is append-only (on PostgreSQL a trigger refuses DELETE): fast changes outnumber the slow.
    AuditTrail.objects.bulk_create(
        AuditTrail(
            entity="products", object_id=f"q{n}", operation="update", source="webhook", at=NOW, version=ago(minutes=1)
        )
        for n in range(400)
    )


def webhooks_stopped(at: bool) -> None:
    config.update(WEBHOOK_SILENCE_MINUTES, 60)
    factories.inbox_event(received_at=ago(minutes=60 if at else 59))
    run = factories.sync_run(finished_at=ago(minutes=5))
    item = factories.queue_item(object_id="pulled", sync_run=run, source=QueueItem.Source.PULL)
    QueueItem.objects.filter(pk=item.pk).update(status=QueueItem.Status.COMPLETED, finished_at=ago(minutes=5))


def webhook_arrives() -> None:
    factories.inbox_event(received_at=NOW)


def breaker(at: bool) -> None:
    state = BreakerState.State.OPEN if at else BreakerState.State.CLOSED
    factories.breaker_state(ORG, state=state, open_until=NOW + timedelta(minutes=1), last_failure="Zoho 503")


def breaker_closes() -> None:
    BreakerState.objects.update(state=BreakerState.State.CLOSED)


def auth(at: bool) -> None:
    factories.breaker_state(ORG, auth_failed_at=NOW if at else None, auth_detail="invalid_code")


def auth_fixed() -> None:
    BreakerState.objects.update(auth_failed_at=None)


def quota(at: bool) -> None:
    # Free plan: 1,000 a day, reserve 10 % = 100: fires when only those 100 are left.
    factories.limiter_state(ORG, calls_today=900 if at else 899, day_resets_at=NOW + timedelta(hours=6))


def new_day() -> None:
    LimiterState.objects.update(calls_today=0)


def webhook_cap(at: bool) -> None:
    config.update_many({ZOHO_WEBHOOK_DAILY_CAP: 10, ZOHO_CAP_ALERT_RATIO: 0.8})
    factories.limiter_state(ORG, day_resets_at=NOW + timedelta(hours=6))
    for n in range(8 if at else 7):
        factories.inbox_event(received_at=ago(hours=1), idempotency_key=f"cap:{n}")
    factories.inbox_event(received_at=ago(days=1), idempotency_key="yesterday")


def api_cap(at: bool) -> None:
    config.update(ZOHO_CAP_ALERT_RATIO, 0.01)  # of 1,000: 10 calls
    factories.limiter_state(ORG, day_resets_at=NOW + timedelta(hours=6))
    for n in range(10 if at else 9):
        factories.zoho_call(organization_id=ORG, started_at=ago(minutes=n))
    factories.zoho_call(organization_id=ORG, started_at=ago(days=1))


def cap_day_over() -> None:
    InboxEvent.objects.update(received_at=ago(days=2))
    ZohoCall.objects.update(started_at=ago(days=2))


def drift(at: bool) -> None:
    config.update(RECONCILIATION_DRIFT_THRESHOLD, 2)
    report = {"drift": 2 if at else 1, "totals": {"missing": 2}, "buckets": {"2026-11": {"missing": {"ids": ["7"]}}}}
    factories.sync_run(
        "invoices", run_type=SyncRun.RunType.RECONCILIATION, created_at=ago(hours=1), drift_report=report
    )


def clean_reconciliation() -> None:
    factories.sync_run("invoices", run_type=SyncRun.RunType.RECONCILIATION, created_at=NOW, drift_report={"drift": 0})


def heal_repeats(at: bool) -> None:
    config.update(HEAL_REPEAT_RUNS, 3)
    for minutes, value in [(3, 2), (2, 1 if at else 0), (1, 4)]:
        Metric.objects.create(name="heal.expired_leases", value=value, at=ago(minutes=minutes))


def heal_finds_nothing() -> None:
    Metric.objects.create(name="heal.expired_leases", value=0, at=NOW)


def drainers_silent(at: bool) -> None:
    config.update(HEARTBEAT_PERIOD_SECONDS, 30)
    factories.worker_heartbeat(last_seen_at=ago(seconds=60 if at else 59))
    pending_rows(1)


@dataclass(frozen=True)
class Case:
    rule: str
    build: Callable[[bool], None]
    clear: Callable[[], None]
    subject: str
    severity: str


CASES = [
    Case("queue_backlog", backlog, finish_all, "all", "warning"),
    Case("failure_rate", failure_rate, finish_all, "all", "critical"),
    Case("dlq_size", dlq, resolve_dead_letters, "products", "error"),
    Case("sync_lag", lag_oldest_pending, finish_all, "queue", "warning"),
    Case("sync_lag", lag_cursor, fresh_cursors, "cursor:invoices", "warning"),
    Case("queue_stalled", stalled, progress, "all", "error"),
    Case("stuck_processing", stuck_lease, finish_processing, "queue", "error"),
    Case("stuck_processing", stuck_run, finish_processing, "run:", "error"),
    Case("worker_heartbeat", worker_down, live_worker, "workers", "critical"),
    Case("drainers_silent", drainers_silent, live_worker, "drainers", "error"),
    Case("freshness", freshness, fast_again, "products", "warning"),
    Case("webhooks_stopped", webhooks_stopped, webhook_arrives, "all", "warning"),
    Case("breaker_open", breaker, breaker_closes, ORG, "error"),
    Case("zoho_auth", auth, auth_fixed, ORG, "critical"),
    Case("zoho_quota", quota, new_day, "api", "error"),
    Case("zoho_daily_cap", webhook_cap, cap_day_over, "webhooks", "warning"),
    Case("zoho_daily_cap", api_cap, cap_day_over, "api", "warning"),
    Case("reconciliation_drift", drift, clean_reconciliation, "invoices", "warning"),
    Case("healing_repeats", heal_repeats, heal_finds_nothing, "expired_leases", "warning"),
]
IDS = [f"{case.rule}-{case.build.__name__}" for case in CASES]


@pytest.fixture(autouse=True)
def _organisation(settings):
    settings.ZOHO_ORGANIZATION_ID = ORG


def findings(case: Case) -> list[rules.Finding]:
    return rules.RULES[case.rule](NOW)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rule_fires_at_its_threshold(case):
    case.build(True)
    [finding] = findings(case)
    assert finding.fingerprint.startswith(f"{case.rule}:{case.subject}")
    assert finding.severity == case.severity
    if finding.threshold is not None and finding.value is not None:
        assert finding.value >= finding.threshold


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rule_is_quiet_below_its_threshold(case):
    case.build(False)
    assert findings(case) == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rule_alert_resolves_when_the_condition_clears(case):
    config.update(ALERT_CLEAR_EVALUATIONS, 2)
    case.build(True)
    engine.evaluate(NOW)
    alert = Alert.objects.get(rule=case.rule, fingerprint__startswith=f"{case.rule}:{case.subject}")
    case.clear()
    engine.evaluate(NOW + timedelta(seconds=1))
    engine.evaluate(NOW + timedelta(seconds=2))
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_at) == (Alert.Status.RESOLVED, NOW + timedelta(seconds=2))


def test_worker_that_never_beat_is_down():
    [finding] = rules.RULES["worker_heartbeat"](NOW)
    assert (finding.severity, finding.title) == ("critical", "Worker down: no heartbeat ever")


def test_heartbeat_late_but_within_grace_is_not_an_alert():
    config.update_many({HEARTBEAT_PERIOD_SECONDS: 30, HEARTBEAT_GRACE_SECONDS: 90})
    factories.worker_heartbeat(last_seen_at=ago(seconds=60))
    assert rules.liveness(timedelta(seconds=60), period=30, grace=90) is rules.Liveness.LATE
    assert rules.RULES["worker_heartbeat"](NOW) == []


def test_queue_not_moving_is_not_raised_when_no_worker_is_alive():
    stalled(True)
    WorkerHeartbeat.objects.all().delete()
    assert rules.RULES["queue_stalled"](NOW) == []


def test_queue_rows_of_paused_entities_are_not_a_stall():
    stalled(True)
    config.update(PAUSED_ENTITIES, ["products"])
    assert rules.RULES["queue_stalled"](NOW) == []


def test_webhooks_quiet_while_pulls_find_nothing_is_not_an_alert():
    config.update(WEBHOOK_SILENCE_MINUTES, 60)
    factories.inbox_event(received_at=ago(hours=5))
    factories.sync_run(finished_at=ago(minutes=5))
    assert rules.RULES["webhooks_stopped"](NOW) == []


def test_healing_needs_the_configured_number_of_runs():
    config.update(HEAL_REPEAT_RUNS, 3)
    for minutes in (2, 1):
        Metric.objects.create(name="heal.stuck_runs", value=5, at=ago(minutes=minutes))
    assert rules.RULES["healing_repeats"](NOW) == []


def test_payload_excerpt_is_short_and_hides_credentials():
    text = rules.excerpt({"access_token": "1000.secret", "name": "x" * 500})
    assert "1000.secret" not in text and '"access_token": "***"' in text
    assert len(text) == core.EXCERPT_CHARS


def test_failure_rate_needs_enough_finished_rows():
    config.update_many({FAILURE_RATE_THRESHOLD: 0.05, FAILURE_RATE_MIN_ROWS: 20})
    rows = pending_rows(3, status=QueueItem.Status.DEAD_LETTER, finished_at=ago(minutes=1))
    assert len(rows) == 3 and rules.RULES["failure_rate"](NOW) == []
