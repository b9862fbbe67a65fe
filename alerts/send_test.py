"""Test notifications (`send_test_alert`, the admin's "send test"): proof that a channel delivers."""

from __future__ import annotations

from datetime import datetime

from alerts import channels, delivery
from alerts.models import Alert, AlertDelivery


def send_test(names: list[str], *, by: str, now: datetime) -> list[AlertDelivery]:
    """Send one test message to each named channel now and return its recorded delivery.

    The test alert is stored resolved: it shows in the admin with its deliveries, never as trouble.
    """
    unknown = sorted(set(names) - set(channels.NAMES))
    if unknown:
        raise ValueError(f"unknown channel {', '.join(unknown)}; channels are {', '.join(channels.NAMES)}")
    alert = Alert.objects.create(
        rule="test",
        fingerprint=f"test:{now.isoformat()}",
        severity=Alert.Severity.INFO,
        status=Alert.Status.RESOLVED,
        title=f"Test alert from TDS Core (sent by {by})",
        value=1,
        threshold=1,
        context={"reason": "a test of the alert channels", "entity": "products", "object_ids": ["test"]},
        first_seen=now,
        last_seen=now,
        resolved_at=now,
        resolved_by=by,
        last_notified_at=now,
    )
    deliveries = AlertDelivery.objects.bulk_create(
        [AlertDelivery(alert=alert, channel=name, event=AlertDelivery.Event.TEST, created_at=now) for name in names]
    )
    # Re-read them so each has its id (SQLite's bulk_create may not return them) and its alert.
    deliveries = list(AlertDelivery.objects.filter(alert=alert).select_related("alert").order_by("id"))
    delivery.send(deliveries)
    return list(AlertDelivery.objects.filter(alert=alert).order_by("id"))
