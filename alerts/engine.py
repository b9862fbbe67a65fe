"""Findings → alerts (DESIGN "alerts"): one unresolved alert per fingerprint, resolved once clear,
escalated and re-notified on time; every notification queued as an AlertDelivery for `delivery`.

`evaluate(now)` is the unit of work the schedule and `check_alerts` call once a minute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from alerts import channels, rules
from alerts.models import Alert, AlertDelivery, AlertSilence
from tdscore import config

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
        """Queue `event` for `alert` on each channel; none while silenced (the alert is still recorded)."""
        if self.silenced(alert):
            self.result.silenced += 1
            return 0
        # An alert about a channel is not sent through that channel: it would only fail again.
        targets = [c for c in (to if to is not None else self.channels) if alert.fingerprint != f"channel_failing:{c}"]
        if not targets:
            return 0
        AlertDelivery.objects.bulk_create(
            [
                AlertDelivery(alert=alert, channel=c, event=event, next_attempt_at=self.now, created_at=self.now)
                for c in targets
            ]
        )
        Alert.objects.filter(pk=alert.pk).update(last_notified_at=self.now)
        alert.last_notified_at = self.now
        self.result.queued += len(targets)
        return len(targets)


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
    notifier = Notifier(now, result)
    for finding in result.findings:
        record(finding, now, notifier)
    clear(ran, {f.fingerprint for f in result.findings}, now, notifier)
    escalate(now, notifier)
    remind(now, notifier)
    return result


def record(finding: rules.Finding, now: datetime, notifier: Notifier) -> Alert:
    """Raise a new alert for the finding, or count a repeat on its open one (notify only if it got worse)."""
    alert = Alert.objects.filter(fingerprint=finding.fingerprint).exclude(status=Alert.Status.RESOLVED).first()
    if alert is None:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
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
        except IntegrityError:
            # Another evaluation (a manual check_alerts beside the schedule) raised it first.
            alert = Alert.objects.filter(fingerprint=finding.fingerprint).exclude(status=Alert.Status.RESOLVED).get()
        else:
            notifier.result.raised.append(alert)
            notifier.notify(alert, AlertDelivery.Event.RAISED)
            return alert
    worse = RANK[finding.severity] > RANK[alert.severity]
    fields = {
        "title": finding.title[:255],
        "context": finding.context,
        "value": finding.value,
        "threshold": finding.threshold,
        "last_seen": now,
        "clear_evaluations": 0,
    }
    if worse:
        fields["severity"] = finding.severity
    Alert.objects.filter(pk=alert.pk).update(occurrences=F("occurrences") + 1, **fields)
    alert.refresh_from_db()
    notifier.result.repeated.append(alert)
    if worse:
        notifier.notify(alert, AlertDelivery.Event.RAISED)
    return alert


def clear(ran: set[str], seen: set[str], now: datetime, notifier: Notifier) -> None:
    """Unresolved alerts of the rules that ran and did not see them count one clear evaluation;
    at `alert_clear_evaluations` they resolve (and those anyone was told about say so).

    In bulk: a thousand open alerts whose conditions all cleared at once cost two statements.
    """
    unseen = Alert.objects.filter(rule__in=ran).exclude(status=Alert.Status.RESOLVED).exclude(fingerprint__in=seen)
    unseen.update(clear_evaluations=F("clear_evaluations") + 1)
    due = list(unseen.filter(clear_evaluations__gte=config.get("alert_clear_evaluations")).values_list("pk", flat=True))
    # Conditional on still being unresolved, as Alert.resolve is; then read back the ones this
    # evaluation moved (resolved at its own `now`), not those an operator or another evaluation did.
    Alert.objects.filter(pk__in=due).exclude(status=Alert.Status.RESOLVED).update(
        status=Alert.Status.RESOLVED, resolved_at=now, resolved_by=""
    )
    for alert in Alert.objects.filter(pk__in=due, resolved_at=now, resolved_by=""):
        notifier.result.resolved.append(alert)
        if alert.last_notified_at is not None:
            notifier.notify(alert, AlertDelivery.Event.RESOLVED)


def escalate(now: datetime, notifier: Notifier) -> None:
    """An open (unacknowledged) critical past `alert_escalation_minutes`: one escalated notification."""
    due = Alert.objects.filter(
        status=Alert.Status.OPEN,
        severity=Alert.Severity.CRITICAL,
        escalated_at__isnull=True,
        first_seen__lte=now - timedelta(minutes=config.get("alert_escalation_minutes")),
    )
    ids = list(due.values_list("pk", flat=True))
    # Conditional, then read back at this evaluation's `now`: two evaluations at once escalate each alert once.
    Alert.objects.filter(pk__in=ids, escalated_at__isnull=True).update(escalated_at=now)
    for alert in Alert.objects.filter(pk__in=ids, escalated_at=now):
        notifier.result.escalated.append(alert)
        notifier.notify(alert, AlertDelivery.Event.ESCALATED, to=channels.escalation())


def remind(now: datetime, notifier: Notifier) -> None:
    """Re-notify alerts still open `alert_renotify_minutes` after the last notification (0: never)."""
    every = config.get("alert_renotify_minutes")
    if not every or not notifier.channels:
        return
    cutoff = now - timedelta(minutes=every)
    due = Alert.objects.filter(status=Alert.Status.OPEN).filter(
        Q(last_notified_at__lte=cutoff) | Q(last_notified_at__isnull=True, first_seen__lte=cutoff)
    )
    for alert in due:
        if notifier.notify(alert, AlertDelivery.Event.REMINDER):
            notifier.result.reminded.append(alert)
