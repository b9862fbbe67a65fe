"""Generic webhook (ALERT_WEBHOOK_URL): JSON signed with Standard Webhooks headers (ALERT_WEBHOOK_SECRET).

The message id is the delivery's, so a receiver that sees a retry can tell it is the same message.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from alerts import alert_message
from alerts.channels import Event, http


def body(alert, event: Event) -> dict:
    notice = alert_message.build(alert, event)
    return {
        "type": f"alert.{event.kind}",
        "timestamp": event.at.isoformat(),
        "data": {
            "id": alert.pk,
            "rule": alert.rule,
            "fingerprint": alert.fingerprint,
            "severity": alert.severity,
            "status": alert.status,
            "title": alert.title,
            "value": alert.value,
            "threshold": alert.threshold,
            "occurrences": alert.occurrences,
            "first_seen": alert.first_seen.isoformat(),
            "last_seen": alert.last_seen.isoformat(),
            "context": alert.context,
            "url": notice.link,
            "dashboard_url": notice.dashboard,
        },
    }


def send(alert, event: Event) -> None:
    payload = json.dumps(body(alert, event), separators=(",", ":"))
    # The id stays the same on every retry, the timestamp is this attempt's: receivers refuse
    # signatures more than five minutes old, and a retry may come an hour later.
    sent_at = timezone.now()
    headers = {
        "content-type": "application/json",
        "webhook-id": event.id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
    }
    if settings.ALERT_WEBHOOK_SECRET:
        headers["webhook-signature"] = Webhook(settings.ALERT_WEBHOOK_SECRET).sign(event.id, sent_at, payload)
    http.post(settings.ALERT_WEBHOOK_URL, name="webhook", content=payload.encode(), headers=headers)
