"""System checks about alerting."""

from django.core import checks
from django.core.checks import register

from alerts import channels


@register()
def check_alert_channels(app_configs, **kwargs):
    if channels.enabled():
        return []
    return [
        checks.Warning(
            "No alert channel is enabled: alerts are recorded and shown in the admin and the API, "
            "but nobody is notified.",
            hint="Set ALERT_EMAIL_TO, SLACK_WEBHOOK_URL, ALERT_WEBHOOK_URL, or TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID.",
            id="alerts.W001",
        )
    ]
