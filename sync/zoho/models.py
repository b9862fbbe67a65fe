"""State of the Zoho boundary shared by every process.

One OAuth token per account, one limiter row and one breaker row per organisation, and a log of
calls that both of them read: the limiter counts the last minute and what is in flight, the breaker
reads the failure rate of recent calls. Rows are changed under a row lock (PostgreSQL) or inside an
IMMEDIATE transaction (SQLite), so every process sees and respects the same numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from sync.zoho.crypto import EncryptedTextField


class ZohoToken(models.Model):
    """The one cached access token of an OAuth client + refresh token, shared by every process.

    A refresh token mints at most 10 access tokens per 10 minutes, so refreshing per worker would
    lock the integration out; whoever holds this row's lock refreshes for everyone.

    A row written by `zoho_connect` also keeps the refresh token (`connected_at` set), which
    serves when ZOHO_REFRESH_TOKEN is unset. Both tokens are stored encrypted (sync.zoho.crypto):
    a database dump without the key holds no usable credential.
    """

    account = models.CharField(max_length=64, unique=True)  # sha256 of accounts host, client id, refresh token
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)  # stored by zoho_connect
    scope = models.TextField(blank=True)  # as the token endpoint granted it
    api_domain = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "tds_zoho_tokens"

    def __str__(self) -> str:
        return f"Zoho token (expires {self.expires_at:%Y-%m-%d %H:%M:%S})" if self.expires_at else "Zoho token (none)"

    def usable(self, now: datetime, *, margin: timedelta) -> bool:
        return bool(self.access_token) and self.expires_at is not None and self.expires_at - margin > now


class CallOutcome(models.TextChoices):
    IN_FLIGHT = "in_flight"
    OK = "ok"
    FAILURE = "failure"  # 5xx, timeout, dropped connection: what the breaker counts
    THROTTLED = "throttled"  # 429: Zoho is healthy, we were too fast
    REJECTED = "rejected"  # 4xx and auth: Zoho is healthy, the request was refused
    INTERRUPTED = "interrupted"  # our process stopped mid-call (SIGTERM, a bug): says nothing about Zoho


class ZohoCall(models.Model):
    """One call to the Zoho API, from the moment the limiter granted it."""

    organization_id = models.CharField(max_length=40)
    path = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    lease_until = models.DateTimeField()  # a process killed mid-call frees its concurrency slot here
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=CallOutcome.choices, default=CallOutcome.IN_FLIGHT)
    status = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        db_table = "tds_zoho_calls"
        indexes = [
            # Minute window and pruning: WHERE organization_id = %s AND started_at > now - 60 s.
            models.Index(fields=["organization_id", "started_at"], name="tds_zoho_call_started"),
            # Breaker failure rate: WHERE organization_id = %s AND finished_at > window start.
            models.Index(fields=["organization_id", "finished_at"], name="tds_zoho_call_finished"),
            # Concurrency: WHERE organization_id = %s AND finished_at IS NULL AND lease_until > now.
            models.Index(
                fields=["organization_id", "lease_until"],
                condition=Q(finished_at__isnull=True),
                name="tds_zoho_call_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.path} at {self.started_at:%H:%M:%S} ({self.outcome})"


class LimiterState(models.Model):
    """Per organisation: the day's count and what Zoho told us about its own counters."""

    organization_id = models.CharField(max_length=40, unique=True)
    day_resets_at = models.DateTimeField(null=True, blank=True)  # end of the current Zoho day
    calls_today = models.PositiveIntegerField(default=0)
    # Zoho's x-rate-limit-remaining, counted down by each call we make: Zoho's count wins over ours.
    reported_remaining = models.PositiveIntegerField(null=True, blank=True)
    # Zoho's x-rate-limit-limit: the organisation's real daily cap, over the plan's and ZOHO_DAILY_CAP.
    reported_limit = models.PositiveIntegerField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)  # after a 429: nobody calls before this
    day_blocked = models.BooleanField(default=False)  # Zoho answered code 45: nothing until the day resets
    pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tds_zoho_limiter"

    def __str__(self) -> str:
        return f"Zoho limiter {self.organization_id}: {self.calls_today} calls today"


class BreakerState(models.Model):
    """Per organisation: the circuit breaker's state, and the separate auth state."""

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open"

    organization_id = models.CharField(max_length=40, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLOSED)
    # The failure-rate window never reaches back past the last close, so failures that opened the
    # breaker cannot open it again right after a successful probe.
    closed_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(null=True, blank=True)
    open_until = models.DateTimeField(null=True, blank=True)
    probe_until = models.DateTimeField(null=True, blank=True)  # half-open: the probe's lease
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_failure = models.TextField(blank=True)
    auth_failed_at = models.DateTimeField(null=True, blank=True)  # set: every caller is refused
    auth_detail = models.TextField(blank=True)
    auth_retry_at = models.DateTimeField(null=True, blank=True)  # one caller may try again after this
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tds_zoho_breaker"

    def __str__(self) -> str:
        return f"Zoho breaker {self.organization_id}: {'auth' if self.auth_failed_at else self.state}"
