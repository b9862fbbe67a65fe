"""E-mail through Django's mail (EMAIL_URL) to ALERT_EMAIL_TO, else the admin users, as text and HTML."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.utils.html import format_html, format_html_join

from alerts import alert_message
from alerts.channels import ChannelError, Event

# The server will refuse these the same way next time: our credentials, or every recipient.
PERMANENT = (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused)


def recipients() -> list[str]:
    """ALERT_EMAIL_TO when set; else, with ALERT_EMAIL_ADMINS, every active superuser with an address."""
    if settings.ALERT_EMAIL_TO or not settings.ALERT_EMAIL_ADMINS:
        return list(settings.ALERT_EMAIL_TO)
    admins = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    return sorted(admins.values_list("email", flat=True))


def message(alert, event: Event) -> EmailMultiAlternatives:
    to = recipients()
    if not to:
        raise ChannelError(
            "email: nobody to write to: set ALERT_EMAIL_TO or give an admin user an address", permanent=True
        )
    notice = alert_message.build(alert, event)
    mail = EmailMultiAlternatives(
        subject=notice.headline[:200],
        body=notice.text(),
        from_email=settings.ALERT_EMAIL_FROM,
        to=to,
    )
    rows = format_html_join("", "<tr><th align='left'>{}</th><td>{}</td></tr>", notice.facts())
    html = format_html(
        "<h2>{}</h2><table>{}</table><p><a href='{}'>Open alert</a> · <a href='{}'>Dashboard</a></p>",
        notice.headline,
        rows,
        notice.link,
        notice.dashboard,
    )
    mail.attach_alternative(html, "text/html")
    return mail


def send(alert, event: Event) -> None:
    try:
        message(alert, event).send()
    except PERMANENT as exc:
        raise ChannelError(f"email refused: {exc}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"email: {type(exc).__name__}: {exc}", permanent=False) from exc
