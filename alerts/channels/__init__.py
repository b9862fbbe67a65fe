"""Notification channels: one module per channel, each with `send(alert, event)`.

A channel is on when all of its variables are set. `send` raises `ChannelError` when the message
did not get through; `permanent` says retrying cannot help (the URL is gone, the token refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings


class ChannelError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Event:
    """What a notification says happened to its alert, and a stable id for receivers to dedupe on."""

    kind: str  # AlertDelivery.Event
    id: str
    at: datetime


# The variables that switch each channel on (any one of e-mail's); the module of the same name sends.
SETTINGS = {
    "email": ("ALERT_EMAIL_TO", "ALERT_EMAIL_ADMINS"),
    "slack": ("SLACK_WEBHOOK_URL",),
    "webhook": ("ALERT_WEBHOOK_URL",),
    "telegram": ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID"),
}
NAMES = tuple(SETTINGS)


def enabled() -> list[str]:
    return [name for name in SETTINGS if _is_on(name)]


def _is_on(name: str) -> bool:
    values = [getattr(settings, variable) for variable in SETTINGS[name]]
    # E-mail needs one place to send to; the others need every one of their variables.
    return any(values) if name == "email" else all(values)


def escalation() -> list[str]:
    """Where escalations go: ALERT_ESCALATION_CHANNELS (those enabled), else every enabled channel."""
    chosen = [name for name in settings.ALERT_ESCALATION_CHANNELS if name in enabled()]
    return chosen or enabled()


def send(channel: str, alert, event: Event) -> None:
    if channel not in MODULES:
        raise ChannelError(f"unknown channel {channel!r}", permanent=True)
    MODULES[channel].send(alert, event)


# Imported here, after what they import from this module, so the first alert of a process does
# not wait for its channel's imports.
from alerts.channels import email, slack, telegram, webhook  # noqa: E402

MODULES = {"email": email, "slack": slack, "webhook": webhook, "telegram": telegram}
