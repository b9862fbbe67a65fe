"""Findings → alerts: one unresolved alert per fingerprint, resolved once clear,
escalated and re-notified on time; every notification queued as an AlertDelivery for `delivery`.

`evaluate(now)` is the unit of work the schedule and `check_alerts` call once a minute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from alerts import channels, rules
from alerts.config_keys import ALERT_CLEAR_EVALUATIONS, ALERT_ESCALATION_MINUTES, ALERT_RENOTIFY_MINUTES
from alerts.models import Alert, AlertDelivery, AlertSilence
from tdscore import config
from tdscore.models import Metric

logger = logging.getLogger(__name__)
RANK = {severity: n for n, severity in enumerate(Alert.Severity.values)}  # info < warning < error < critical


@dataclass
class Evaluation:
    findings: list[rules.Finding] = field(default_factory=list)
    raised: list[Alert] = field(default_factory=list)
    repeated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    escalated: list[Alert] = field(default_factory=list)
    reminded: list[Alert] = field(default_factory=list)
    silenced: int = 0
    queued: int = 0  # deliveries created
    failed_rules: dict[str, str] = field(default_factory=dict)


class Notifier:
    """Queues deliveries for one evaluation, reading the silences and the enabled channels once."""

    def __init__(self, now: datetime, result: Evaluation) -> None:
        self.now = now
        self.result = result
        self.silences = list(AlertSilence.objects.filter(until__gt=now))
        self.channels = channels.enabled()

    def silenced(self, alert: Alert) -> bool:
        return any(silence.covers(alert, self.now) for silence in self.silences)

    def notify(self, alert: Alert, event: str, *, to: list[str] | None = None) -> int:
        return self.notify_many([alert], event, to=to)

    def notify_many(self, alerts: list[Alert], event: str, *, to: list[str] | None = None) -> int:
        """Queue `event` for each alert on each channel, in two statements however many alerts;
        none for a silenced alert (it is still recorded). Returns the deliveries queued."""
        rows, told = [], []
        for alert in alerts:
            if self.silenced(alert):
                self.result.silenced += 1
                continue
            # An alert about a channel is not sent through that channel: it would only fail again.
            targets = [c for c in (self.channels if to is None else to) if alert.fingerprint != f"channel_failing:{c}"]
            rows += [
                AlertDelivery(alert=alert, channel=c, event=event, next_attempt_at=self.now, created_at=self.now)
                for c in targets
            ]
            if targets:
                alert.last_notified_at = self.now
                told.append(alert.pk)
        AlertDelivery.objects.bulk_create(rows)
        Alert.objects.filter(pk__in=told).update(last_notified_at=self.now)
        self.result.queued += len(rows)
        return len(rows)


def run_rules(now: datetime, result: Evaluation) -> set[str]:
    """Every rule's findings into `result`; returns the rules that ran (a broken rule resolves nothing)."""
    ran = set()
    for name, check in rules.RULES.items():
        try:
            result.findings.extend(check(now))
        except Exception as exc:
            logger.exception("alert rule %s failed", name)
            result.failed_rules[name] = f"{type(exc).__name__}: {exc}"
            continue
        ran.add(name)
    return ran


def evaluate(now: datetime) -> Evaluation:
    result = Evaluation()
    ran = run_rules(now, result)
    # The rules only read; everything they lead to is written in one transaction, one commit.
    with transaction.atomic():
        notifier = Notifier(now, result)
        findings = list({f.fingerprint: f for f in reversed(result.findings)}.values())[::-1]
        fingerprints = {f.fingerprint for f in findings}
        unresolved = Alert.objects.filter(fingerprint__in=fingerprints).exclude(status=Alert.Status.RESOLVED)
        open_alerts = {a.fingerprint: a for a in unresolved}
        raise_new([f for f in findings if f.fingerprint not in open_alerts], now, notifier)
        repeat([(open_alerts[f.fingerprint], f) for f in findings if f.fingerprint in open_alerts], now, notifier)
        clear(ran, fingerprints, now, notifier)
        escalate(now, notifier)
        remind(now, notifier)
    return result


def _new_alert(finding: rules.Finding, now: datetime) -> Alert:
    return Alert(
        rule=finding.rule,
        fingerprint=finding.fingerprint,
        severity=finding.severity,
        title=finding.title[:255],
        context=finding.context,
        value=finding.value,
        threshold=finding.threshold,
        first_seen=now,
        last_seen=now,
    )


def raise_new(findings: list[rules.Finding], now: datetime, notifier: Notifier) -> None:
    """One alert per new fingerprint, inserted together, each notified."""
    if not findings:
        return
    alerts = [_new_alert(f, now) for f in findings]
    try:
        with transaction.atomic():
            Alert.objects.bulk_create(alerts)
    except IntegrityError:
        # Another evaluation (a manual check_alerts beside the schedule) raised some a moment ago:
        # those are repeats, the rest new.
        taken = Alert.objects.filter(fingerprint__in=[f.fingerprint for f in findings]).exclude(
            status=Alert.Status.RESOLVED
        )
        taken = {a.fingerprint: a for a in taken}
        repeat([(taken[f.fingerprint], f) for f in findings if f.fingerprint in taken], now, notifier)
        alerts = [_new_alert(f, now) for f in findings if f.fingerprint not in taken]
        Alert.objects.bulk_create(alerts)
    notifier.result.raised += alerts
    notifier.notify_many(alerts, AlertDelivery.Event.RAISED)


REPEAT_FIELDS = ["title", "context", "value", "threshold", "last_seen", "severity", "occurrences"]


def repeat(pairs: list[tuple[Alert, rules.Finding]], now: datetime, notifier: Notifier) -> None:
    """Count a repeat on each open alert (newest value and context, in one statement); notify the
    ones that got worse, under their worse severity."""
    worse = []
    for alert, finding in pairs:
        if RANK[finding.severity] > RANK[alert.severity]:
            alert.severity = finding.severity
            worse.append(alert)
        alert.title, alert.context = finding.title[:255], finding.context
        alert.value, alert.threshold = finding.value, finding.threshold
        alert.last_seen = now
        alert.occurrences += 1
    alerts = [alert for alert, _ in pairs]
    Alert.objects.bulk_update(alerts, REPEAT_FIELDS)
    notifier.result.repeated += alerts
    notifier.notify_many(worse, AlertDelivery.Event.RAISED)


EVALUATIONS = "alerts.evaluations"  # a tds_metrics point per evaluation (value: its findings)


def clear(ran: set[str], seen: set[str], now: datetime, notifier: Notifier) -> None:
    """Resolve the unresolved alerts of the rules that ran that no finding has matched in the last
    `alert_clear_evaluations` evaluations (and tell whoever was told they were raised).

    Counted from the evaluations' own record (one point each in tds_metrics), not a counter on
    every alert: a thousand open alerts cost one read a minute, not a thousand row rewrites.
    """
    # Two evaluations at one instant are one point (tds_metric_one_point), not an error.
    Metric.objects.bulk_create(
        [Metric(name=EVALUATIONS, value=len(notifier.result.findings), at=now)],
        update_conflicts=True,
        unique_fields=["name", "at", "labels"],
        update_fields=["value"],
    )
    n = config.get(ALERT_CLEAR_EVALUATIONS)
    recent = Metric.objects.filter(name=EVALUATIONS, at__lte=now).order_by("-at").values_list("at", flat=True)
    cutoff = list(recent[n - 1 : n])  # tds_metric_name_at
    if not cutoff:
        return  # fewer evaluations than that so far
    unseen = Alert.objects.filter(rule__in=ran, last_seen__lt=cutoff[0]).exclude(status=Alert.Status.RESOLVED)
    due = list(unseen.exclude(fingerprint__in=seen).values_list("pk", flat=True))
    if not due:
        return
    # Conditional on still being unresolved, as Alert.resolve is; then read back the ones this
    # evaluation moved (resolved at its own `now`), not those an operator or another evaluation did.
    Alert.objects.filter(pk__in=due).exclude(status=Alert.Status.RESOLVED).update(
        status=Alert.Status.RESOLVED, resolved_at=now, resolved_by=""
    )
    resolved = list(Alert.objects.filter(pk__in=due, resolved_at=now, resolved_by=""))
    notifier.result.resolved += resolved
    notifier.notify_many([a for a in resolved if a.last_notified_at is not None], AlertDelivery.Event.RESOLVED)


def escalate(now: datetime, notifier: Notifier) -> None:
    """An open (unacknowledged) critical past `alert_escalation_minutes`: one escalated notification."""
    due = Alert.objects.filter(
        status=Alert.Status.OPEN,
        severity=Alert.Severity.CRITICAL,
        escalated_at__isnull=True,
        first_seen__lte=now - timedelta(minutes=config.get(ALERT_ESCALATION_MINUTES)),
    )
    ids = list(due.values_list("pk", flat=True))
    # Conditional, then read back at this evaluation's `now`: two evaluations at once escalate each alert once.
    Alert.objects.filter(pk__in=ids, escalated_at__isnull=True).update(escalated_at=now)
    escalated = list(Alert.objects.filter(pk__in=ids, escalated_at=now))
    notifier.result.escalated += escalated
    notifier.notify_many(escalated, AlertDelivery.Event.ESCALATED, to=channels.escalation())


def remind(now: datetime, notifier: Notifier) -> None:
    """Re-notify alerts still open `alert_renotify_minutes` after the last notification (0: never)."""
    every = config.get(ALERT_RENOTIFY_MINUTES)
    if not every or not notifier.channels:
        return
    cutoff = now - timedelta(minutes=every)
    due = Alert.objects.filter(status=Alert.Status.OPEN).filter(
        Q(last_notified_at__lte=cutoff) | Q(last_notified_at__isnull=True, first_seen__lte=cutoff)
    )
    due = list(due)
    notifier.notify_many(due, AlertDelivery.Event.REMINDER)
    notifier.result.reminded += [a for a in due if a.last_notified_at == now]
