"""System checks about alerting."""

from django.conf import settings
from django.core import checks
from django.core.checks import register

from alerts import channels

# Django's e-mail backends that keep a message on this machine instead of sending it.
UNDELIVERED = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


# A deployment check: under `make run` the console e-mail is the point, and every other command
# would otherwise print this warning.
@register(deploy=True)
def check_alert_channels(app_configs, **kwargs):
    reaching = [name for name in channels.enabled() if name != "email" or settings.EMAIL_BACKEND not in UNDELIVERED]
    if reaching:
        return []
    return [
        checks.Warning(
            "No alert channel reaches anyone: alerts are recorded and shown in the admin and the API, "
            "but nobody is notified.",
            hint="Set EMAIL_URL to an SMTP server (alerts then go to ALERT_EMAIL_TO, else the admin users), "
            "or SLACK_WEBHOOK_URL, ALERT_WEBHOOK_URL, or TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID.",
            id="alerts.W001",
        )
    ]
