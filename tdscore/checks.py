"""System checks for misconfiguration, with stable ids."""

from django.conf import settings
from django.core import checks
from django.core.checks import Error, Tags, register


# A deploy check (`manage.py check --deploy`), like Django's own SECRET_KEY checks: tests and
# one-off commands run on a throwaway key.
@register(Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs):
    if settings.DEBUG or settings.SECRET_KEY_FROM_ENV:
        return []
    return [
        Error(
            "SECRET_KEY is not set.",
            hint="Set SECRET_KEY in the environment or .env (`make run` writes one).",
            id="tdscore.E001",
        )
    ]


@register()
def check_webhook_auth(app_configs, **kwargs):
    names = ("TDS_WEBHOOK_TOKEN", "TDS_WEBHOOK_SECRET", "TDS_ZOHO_WEBHOOK_SECRET", "TDS_STANDARD_WEBHOOK_SECRET")
    if any(getattr(settings, name) for name in names):
        return []
    return [
        checks.Warning(
            "No webhook token or secret is configured: every webhook is refused with 401.",
            hint=f"Set one of {', '.join(names)}.",
            id="sync.W003",
        )
    ]


@register()
def check_zoho_credentials(app_configs, **kwargs):
    names = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ORGANIZATION_ID")
    missing = [name for name in names if not getattr(settings, name)]
    if not missing:
        return []
    return [
        checks.Warning(
            f"Zoho credentials missing: {', '.join(missing)}. Pulls and reconciliation cannot run.",
            # Checks run before migrate and without a database, so a token zoho_connect stored is
            # not looked up here: the hint says it serves in place of ZOHO_REFRESH_TOKEN.
            hint="Webhooks are still received and applied. Instead of ZOHO_REFRESH_TOKEN, a refresh token "
            "stored by `manage.py zoho_connect --code CODE` serves.",
            id="sync.W002",
        )
    ]


@register()
def check_q_cluster(app_configs, **kwargs):
    cluster = settings.Q_CLUSTER
    if cluster.get("retry", 60) > cluster.get("timeout", 0) > settings.TDS_DRAIN_DEADLINE_SECONDS:
        return []
    return [
        checks.Warning(
            "Q_CLUSTER needs drain deadline < timeout < retry, else a task may run twice or be killed mid-batch.",
            id="sync.W001",
        )
    ]
