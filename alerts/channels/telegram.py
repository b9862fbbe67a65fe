"""Telegram bot `sendMessage` (TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID; TELEGRAM_API_BASE for a relay or a test)."""

from __future__ import annotations

from html import escape

from django.conf import settings

from alerts import alert_message
from alerts.channels import Event, http


def message(alert, event: Event) -> dict:
    notice = alert_message.build(alert, event)
    lines = [f"<b>{escape(notice.headline)}</b>", ""]
    lines += [f"<b>{escape(label)}:</b> {escape(text)}" for label, text in notice.facts()]
    lines += [
        "",
        f'<a href="{escape(notice.link)}">Open alert</a> · <a href="{escape(notice.dashboard)}">Dashboard</a>',
    ]
    return {
        "chat_id": settings.TELEGRAM_CHAT_ID,
        "text": "\n".join(lines)[:4096],  # Telegram's limit per message
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }


def send(alert, event: Event) -> None:
    base = settings.TELEGRAM_API_BASE.rstrip("/")
    http.post(f"{base}/bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage", name="telegram", json=message(alert, event))
