"""The Zoho circuit breaker, shared by every process through the database.

closed ──(failure rate ≥ threshold over the window, or N consecutive failures)──► open
open ──(cool-down over)──► half_open: one caller, the probe, goes through; the rest are refused
half_open ──probe succeeds──► closed;  ──probe fails──► open again

Only Zoho being unwell counts as a failure (5xx, code 1000, timeouts, dropped connections); a 429
or a 400 means Zoho is fine. The auth state is separate: a token Zoho refuses after a refresh, or a
refresh token it revoked, refuses every caller (no dead-lettering storm, no refresh storm) until a
refresh succeeds or an operator resets the breaker. One caller may try again every
`zoho_auth_retry_seconds`, so a fixed credential heals without an operator.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import Q

from sync.zoho.config_keys import (
    ZOHO_AUTH_RETRY_SECONDS,
    ZOHO_BREAKER_CONSECUTIVE_FAILURES,
    ZOHO_BREAKER_COOLDOWN_SECONDS,
    ZOHO_BREAKER_FAILURE_RATE,
    ZOHO_BREAKER_MIN_CALLS,
    ZOHO_BREAKER_WINDOW_SECONDS,
)
from sync.zoho.errors import ErrorKind, ZohoError
from sync.zoho.limiter import organization
from sync.zoho.models import BreakerState, CallOutcome, ZohoCall
from tdscore import actions, config
from tdscore.actions import Actor
from tdscore.enums import Action, Readiness


class Circuit(StrEnum):
    """The breaker as callers see it: the stored BreakerState.State, or the separate auth state."""

    CLOSED = BreakerState.State.CLOSED.value
    OPEN = BreakerState.State.OPEN.value
    HALF_OPEN = BreakerState.State.HALF_OPEN.value
    AUTH = "auth"


PROBE_LEASE = timedelta(seconds=60)  # a probe whose process died lets another caller probe after this


def _locked(org: str) -> BreakerState:
    BreakerState.objects.bulk_create([BreakerState(organization_id=org)], ignore_conflicts=True)
    return BreakerState.objects.select_for_update().get(organization_id=org)


def _current(row: BreakerState, now: datetime) -> Circuit:
    if row.auth_failed_at is not None:
        return Circuit.AUTH
    if row.state == BreakerState.State.OPEN and row.open_until and row.open_until <= now:
        return Circuit.HALF_OPEN  # cool-down over: the next caller probes
    return Circuit(row.state)


def state(now: datetime, *, org: str | None = None) -> Circuit:
    """closed, open, half_open or auth, as every process sees it."""
    row = BreakerState.objects.filter(organization_id=organization(org)).first()
    return _current(row, now) if row else Circuit.CLOSED


def allow(now: datetime, *, org: str | None = None) -> None:
    """Return if this caller may call Zoho now; else raise ZohoError (breaker_open or auth)."""
    org = organization(org)
    row = BreakerState.objects.filter(organization_id=org).first()
    if row is None or _current(row, now) == Circuit.CLOSED:
        return
    with transaction.atomic():
        row = _locked(org)
        current = _current(row, now)
        if current == Circuit.AUTH:
            _allow_auth_retry(row, now)
        elif current == Circuit.HALF_OPEN:
            _allow_probe(row, now)
        elif current == Circuit.OPEN:
            raise ZohoError(
                f"Zoho circuit breaker open until {row.open_until:%H:%M:%S}: {row.last_failure}",
                kind=ErrorKind.BREAKER_OPEN,
                retry_after=(row.open_until - now).total_seconds(),
            )


def _allow_auth_retry(row: BreakerState, now: datetime) -> None:
    if row.auth_retry_at is not None and row.auth_retry_at > now:
        raise ZohoError(
            f"Zoho refuses our credentials: {row.auth_detail}",
            kind=ErrorKind.AUTH,
            retry_after=(row.auth_retry_at - now).total_seconds(),
        )
    row.auth_retry_at = now + timedelta(seconds=config.get(ZOHO_AUTH_RETRY_SECONDS))
    row.save(update_fields=["auth_retry_at"])


def _allow_probe(row: BreakerState, now: datetime) -> None:
    if row.state == BreakerState.State.HALF_OPEN and row.probe_until and row.probe_until > now:
        raise ZohoError(
            "Zoho circuit breaker half-open: a probe call is in flight", kind=ErrorKind.BREAKER_OPEN, retry_after=1
        )
    row.state = BreakerState.State.HALF_OPEN
    row.probe_until = now + PROBE_LEASE
    row.updated_at = now
    row.save(update_fields=["state", "probe_until", "updated_at"])


def record_success(now: datetime, *, authenticated: bool = True, org: str | None = None) -> None:
    """Zoho answered (also a 404 or a 400: Zoho is up). `authenticated`: our token was accepted."""
    org = organization(org)
    # The common case (closed, nothing to forget) costs a read, not a write.
    healthy = Q(state=BreakerState.State.CLOSED, consecutive_failures=0)
    if authenticated:
        healthy &= Q(auth_failed_at__isnull=True)
    if not BreakerState.objects.filter(organization_id=org).exclude(healthy).exists():
        return
    with transaction.atomic():
        row = _locked(org)
        # Only the probe closes: a call that was in flight when the breaker opened proves little.
        if row.state == BreakerState.State.HALF_OPEN:
            row.state = BreakerState.State.CLOSED
            row.closed_at = now
            row.probe_until = None
        row.consecutive_failures = 0
        if authenticated:
            _clear_auth(row)
        row.updated_at = now
        row.save()


def record_failure(detail: str, now: datetime, *, org: str | None = None) -> None:
    """Count a failure of Zoho itself (5xx, timeout, dropped connection) and open when due."""
    org = organization(org)
    with transaction.atomic():
        row = _locked(org)
        row.consecutive_failures += 1
        row.last_failure = detail[:1000]
        if row.state == BreakerState.State.HALF_OPEN or _should_open(row, org, now):
            _open(row, now)
        row.updated_at = now
        row.save()


def _should_open(row: BreakerState, org: str, now: datetime) -> bool:
    if row.state != BreakerState.State.CLOSED:
        return False
    if row.consecutive_failures >= config.get(ZOHO_BREAKER_CONSECUTIVE_FAILURES):
        return True
    since = max(row.closed_at, now - timedelta(seconds=config.get(ZOHO_BREAKER_WINDOW_SECONDS)))
    finished = ZohoCall.objects.filter(organization_id=org, finished_at__gt=since).exclude(
        outcome=CallOutcome.IN_FLIGHT
    )
    total = finished.count()
    if total < config.get(ZOHO_BREAKER_MIN_CALLS):
        return False
    failures = finished.filter(outcome=CallOutcome.FAILURE).count()
    return failures / total >= config.get(ZOHO_BREAKER_FAILURE_RATE)


def _open(row: BreakerState, now: datetime) -> None:
    row.state = BreakerState.State.OPEN
    row.opened_at = now
    row.open_until = now + timedelta(seconds=config.get(ZOHO_BREAKER_COOLDOWN_SECONDS))
    row.probe_until = None


def enter_auth(detail: str, now: datetime, *, org: str | None = None) -> None:
    """Zoho refuses our credentials even after a refresh: refuse every caller until it is fixed."""
    with transaction.atomic():
        row = _locked(organization(org))
        if row.auth_failed_at is None:
            row.auth_failed_at = now
        row.auth_detail = detail[:1000]
        row.auth_retry_at = now + timedelta(seconds=config.get(ZOHO_AUTH_RETRY_SECONDS))
        row.updated_at = now
        row.save()


def _clear_auth(row: BreakerState) -> None:
    row.auth_failed_at = None
    row.auth_detail = ""
    row.auth_retry_at = None


def clear_auth(now: datetime, *, org: str | None = None) -> None:
    """A refresh succeeded: the credentials work again."""
    BreakerState.objects.filter(organization_id=organization(org), auth_failed_at__isnull=False).update(
        auth_failed_at=None, auth_detail="", auth_retry_at=None, updated_at=now
    )


def reset(now: datetime, *, actor: Actor, org: str | None = None) -> None:
    """An operator closes the breaker and lifts the auth state (after fixing the credentials)."""
    with transaction.atomic():
        row = _locked(organization(org))
        before = _current(row, now)
        row.state = BreakerState.State.CLOSED
        row.closed_at = now
        row.consecutive_failures = 0
        row.open_until = row.probe_until = None
        row.last_failure = f"reset by {actor}"
        _clear_auth(row)
        row.updated_at = now
        row.save()
        target = f"Zoho breaker ({row.organization_id})"
        actions.record(actor, Action.BREAKER_RESET, target, before=before, after=Circuit.CLOSED, at=now, obj=row)


def readiness(now: datetime) -> tuple[Readiness, str]:
    """The "zoho" check of /health/ready: degraded while the breaker keeps callers out."""
    row = BreakerState.objects.filter(organization_id=organization()).first()
    current = _current(row, now) if row else Circuit.CLOSED
    if current == Circuit.CLOSED:
        return Readiness.OK, "breaker closed"
    if current == Circuit.AUTH:
        return (
            Readiness.DEGRADED,
            f"Zoho refuses our credentials since {row.auth_failed_at:%Y-%m-%d %H:%M:%S}: {row.auth_detail}",
        )
    if current == Circuit.HALF_OPEN:
        return Readiness.DEGRADED, "breaker half-open: probing Zoho"
    return Readiness.DEGRADED, f"breaker open until {row.open_until:%H:%M:%S}: {row.last_failure}"
