"""Slack incoming webhook (SLACK_WEBHOOK_URL), laid out in Block Kit."""

from __future__ import annotations

from django.conf import settings

from alerts import alert_message
from alerts.channels import Event, http

EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":x:", "critical": ":rotating_light:"}


def message(alert, event: Event) -> dict:
    notice = alert_message.build(alert, event)
    emoji = ":white_check_mark:" if event.kind == "resolved" else EMOJI.get(notice.severity, "")
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{text}"} for label, text in notice.facts()[:10]]
    return {
        "text": notice.headline,  # what notifications and clients without blocks show
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"{emoji} {notice.headline}"[:150]}},
            {"type": "section", "fields": fields},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open alert"}, "url": notice.link},
                    {"type": "button", "text": {"type": "plain_text", "text": "Dashboard"}, "url": notice.dashboard},
                ],
            },
        ],
    }


def send(alert, event: Event) -> None:
    http.post(settings.SLACK_WEBHOOK_URL, name="slack", json=message(alert, event))
