"""Silencing: an operator mutes notifications for alerts' rule and subject until a time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from alerts.models import Alert, AlertSilence
from tdscore import actions
from tdscore.actions import Actor
from tdscore.enums import Action


def silence(alerts: Iterable[Alert], *, until: datetime, actor: Actor, reason: str, now: datetime) -> int:
    """Mute each alert's rule and fingerprint until `until` (one silence per distinct pair); each alert
    is one action-log row. Returns how many silences were made."""
    alerts = list(alerts)
    pairs = sorted({(alert.rule, alert.fingerprint) for alert in alerts})
    with transaction.atomic():
        AlertSilence.objects.bulk_create(
            AlertSilence(
                rule=rule, fingerprint=fingerprint, until=until, created_by=actor.name, reason=reason, created_at=now
            )
            for rule, fingerprint in pairs
        )
        for alert in alerts:
            actions.record(
                actor, Action.SILENCE, alert.target, after={"until": until, "reason": reason}, at=now, obj=alert
            )
    return len(pairs)


def save(silence_row: AlertSilence, *, actor: Actor, now: datetime) -> None:
    """Store a silence written by hand (the admin's form): a new one, or one lengthened or cut short."""
    with transaction.atomic():
        stored = AlertSilence.objects.select_for_update().filter(pk=silence_row.pk) if silence_row.pk else None
        before = stored.values("until", "reason").first() if stored is not None else None
        silence_row.created_by = silence_row.created_by or actor.name
        silence_row.save()
        target = f"silence #{silence_row.pk} ({silence_row.rule or '*'} {silence_row.fingerprint or 'any subject'})"
        after = {"until": silence_row.until, "reason": silence_row.reason}
        actions.record(actor, Action.SILENCE, target, before=before, after=after, at=now, obj=silence_row)
