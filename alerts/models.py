"""Alerts raised by rules; deliveries to channels; silences."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from tdscore import actions
from tdscore.actions import Actor
from tdscore.enums import Action


class AlertStateError(ValueError):
    """The alert is already in the state an action would move it to (the API answers 409)."""


class Alert(models.Model):
    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        ERROR = "error"
        CRITICAL = "critical"

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    rule = models.CharField(max_length=50)
    # Rule plus subject (entity, worker…): one unresolved alert per fingerprint.
    fingerprint = models.CharField(max_length=200)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    title = models.CharField(max_length=255)
    detail = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tds_alerts"
        # Acknowledging, resolving and silencing are an operator's answers, not model edits.
        permissions = [("acknowledge_alert", "Can acknowledge, resolve and silence alerts")]
        constraints = [
            # One open alert per rule and subject; a repeat raises `occurrences` instead.
            models.UniqueConstraint(
                fields=["fingerprint"], condition=~Q(status="resolved"), name="tds_alert_one_unresolved"
            ),
        ]
        indexes = [
            # Dashboard: WHERE status = %s ORDER BY last_seen DESC.
            models.Index(fields=["status", "-last_seen"], name="tds_alert_status_seen"),
            # Engine, every minute: WHERE status <> 'resolved' AND rule IN (...) AND last_seen < cutoff,
            # and the escalation and reminder sweeps over open alerts; resolved alerts pile up and
            # are never read here.
            models.Index(fields=["rule", "last_seen"], condition=~Q(status="resolved"), name="tds_alert_unresolved"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title} ({self.status})"

    # The admin, the API, the dashboard and the engine all move an alert through these two, so a
    # race between two operators ends with one of them told, not with the second overwriting the first.
    def acknowledge(self, *, actor: Actor, now: datetime) -> None:
        """Open → acknowledged, recording who and when; AlertStateError if it is not open."""
        self._move(
            Action.ACKNOWLEDGE,
            actor,
            now,
            from_statuses=[self.Status.OPEN],
            to=self.Status.ACKNOWLEDGED,
            acknowledged_by=actor.name,
            acknowledged_at=now,
        )

    def resolve(self, *, actor: Actor, now: datetime) -> None:
        """Open or acknowledged → resolved, recording who and when (the engine's own resolutions are
        a bulk update in alerts.engine, no operator's action)."""
        self._move(
            Action.RESOLVE,
            actor,
            now,
            from_statuses=[self.Status.OPEN, self.Status.ACKNOWLEDGED],
            to=self.Status.RESOLVED,
            resolved_by=actor.name,
            resolved_at=now,
        )

    def _move(
        self, action: Action, actor: Actor, now: datetime, *, from_statuses: list[str], to: str, **fields
    ) -> None:
        with transaction.atomic():
            # Locked, so the status the action log calls "before" is the one the update moved from.
            before = Alert.objects.select_for_update().filter(pk=self.pk).values_list("status", flat=True).first()
            moved = Alert.objects.filter(pk=self.pk, status__in=from_statuses).update(status=to, **fields)
            if not moved:
                raise AlertStateError(f"alert {self.pk} is {before or 'gone'}, not {' or '.join(from_statuses)}")
            self.status = to
            for name, value in fields.items():
                setattr(self, name, value)
            actions.record(actor, action, self.target, before=before, after=to, at=now, obj=self)

    @property
    def target(self) -> str:
        """The alert as the action log names it."""
        return f"alert #{self.pk} ({self.rule})"


class AlertDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # refused for good (401, 403, 404…) or out of attempts

    class Event(models.TextChoices):
        """Why the notification was sent."""

        RAISED = "raised"  # a new alert, or an open one that got worse
        ESCALATED = "escalated"  # a critical left unacknowledged past alert_escalation_minutes
        REMINDER = "reminder"  # still open after alert_renotify_minutes
        RESOLVED = "resolved"  # the condition cleared
        TEST = "test"  # send_test_alert or the admin's "send test"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=20)  # email, slack, webhook, telegram
    event = models.CharField(max_length=10, choices=Event.choices, default=Event.RAISED)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tds_alert_deliveries"
        indexes = [
            # Delivery retries: WHERE status = 'pending' AND next_attempt_at <= now.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="tds_delivery_due"),
            # The channel rule: the newest finished delivery of each channel (WHERE channel = %s ORDER BY id DESC).
            models.Index(fields=["channel", "-id"], name="tds_delivery_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} for alert #{self.alert_id} ({self.status})"


class AlertSilence(models.Model):
    """Mutes notifications for a rule, one fingerprint, or both, until a time; alerts are still recorded."""

    rule = models.CharField(max_length=50, blank=True, help_text="Blank: any rule (then a fingerprint is needed).")
    fingerprint = models.CharField(max_length=200, blank=True, help_text="Blank: every subject of the rule.")
    until = models.DateTimeField()
    reason = models.TextField(blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tds_alert_silences"

    def __str__(self) -> str:
        return f"silence {self.rule or '*'} {self.fingerprint} until {self.until:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if not self.rule and not self.fingerprint:
            raise ValidationError("Name a rule, a fingerprint, or both: an empty silence would mute everything.")

    def covers(self, alert: Alert, now: datetime) -> bool:
        return (
            self.until > now
            and (not self.rule or self.rule == alert.rule)
            and (not self.fingerprint or self.fingerprint == alert.fingerprint)
        )
