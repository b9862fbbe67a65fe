from django.conf import settings
from django.db import models
from django.utils import timezone


class Configuration(models.Model):
    """One runtime setting. Keys, types and ranges are declared in each app's `config_keys` (tdscore.config)."""

    key = models.CharField(max_length=100, unique=True)
    value = models.JSONField()
    value_type = models.CharField(max_length=20)
    category = models.CharField(max_length=40, db_index=True)
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "tds_configuration"
        ordering = ["category", "key"]

    def __str__(self) -> str:
        return f"{self.key} = {self.value!r}"


class Metric(models.Model):
    """A point of a time series, written by workers and read by the dashboard."""

    name = models.CharField(max_length=100)
    value = models.FloatField()
    labels = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tds_metrics"
        indexes = [
            # Dashboard series and retention: WHERE name = %s AND at >= %s ORDER BY at.
            models.Index(fields=["name", "at"], name="tds_metric_name_at"),
            # Retention: WHERE at < cutoff.
            models.Index(fields=["at"], name="tds_metric_at"),
        ]
        constraints = [
            # One point per series, minute and labels: a roll-up run twice replaces, never doubles.
            models.UniqueConstraint(fields=["name", "at", "labels"], name="tds_metric_one_point"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value} @ {self.at:%Y-%m-%d %H:%M:%S}"


class MetricTotal(models.Model):
    """The running total of a counted roll-up series per label set, since installation.

    /metrics exposes these as Prometheus counters. They live apart from tds_metrics because
    retention trims that table, and a counter that goes back looks to Prometheus like a restart.
    """

    name = models.CharField(max_length=100)
    labels = models.JSONField(default=dict, blank=True)
    value = models.FloatField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tds_metric_totals"
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="tds_metric_total_one")]

    def __str__(self) -> str:
        return f"{self.name}{self.labels or ''} = {self.value:g}"


class OperatorAction(models.Model):
    """One thing an operator did, from any door: who, when, from where, what, before and after.

    Written only through tdscore.actions.record; read-only everywhere else.
    """

    class Via(models.TextChoices):
        ADMIN = "admin"
        API = "api"
        DASHBOARD = "dashboard"
        COMMAND = "command"

    at = models.DateTimeField(default=timezone.now)
    # The username, a token's owner, or `<system user>@<host>` for a command.
    actor = models.CharField(max_length=150)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=10, choices=Via.choices)
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "tds_operator_actions"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at"], name="tds_action_at"),
            models.Index(fields=["action", "-at"], name="tds_action_action"),
            models.Index(fields=["actor", "-at"], name="tds_action_actor"),
            # A configuration key's history: WHERE target = %s ORDER BY at DESC.
            models.Index(fields=["target", "-at"], name="tds_action_target"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target} @ {self.at:%Y-%m-%d %H:%M:%S}"
