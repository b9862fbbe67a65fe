"""System checks for misconfiguration: each fires when its setting is wrong and is silent when right."""

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

ZOHO = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ORGANIZATION_ID")
WEBHOOK_AUTH = ("TDS_WEBHOOK_TOKEN", "TDS_WEBHOOK_SECRET", "TDS_ZOHO_WEBHOOK_SECRET", "TDS_STANDARD_WEBHOOK_SECRET")
ALERT_CHANNELS = ("ALERT_EMAIL_TO", "SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID")
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def check_ids(deploy: bool = False) -> set[str]:
    return {message.id for message in run_checks(include_deployment_checks=deploy)}


@pytest.fixture
def configured(settings):
    """A fully configured deployment: no check has anything to say."""
    settings.DEBUG = False
    settings.SECRET_KEY_FROM_ENV = True
    for name in ZOHO:
        setattr(settings, name, "x")
    settings.TDS_WEBHOOK_TOKEN = ["token"]
    settings.SLACK_WEBHOOK_URL = "http://127.0.0.1:9/slack"
    return settings


def test_a_configured_deployment_has_none_of_our_warnings(configured):
    ours = {i for i in check_ids(deploy=True) if i.split(".")[0] in {"tdscore", "sync", "alerts"}}
    assert ours == set()


def test_production_without_secret_key_is_an_error_on_deploy_check(configured):
    configured.SECRET_KEY_FROM_ENV = False
    assert "tdscore.E001" in check_ids(deploy=True)
    with pytest.raises(SystemCheckError, match="tdscore.E001"):
        call_command("check", "--deploy")


def test_debug_runs_on_a_throwaway_secret_key(configured):
    configured.SECRET_KEY_FROM_ENV = False
    configured.DEBUG = True
    assert "tdscore.E001" not in check_ids(deploy=True)


def test_secret_key_is_not_demanded_outside_deploy_checks(configured):
    configured.SECRET_KEY_FROM_ENV = False
    assert "tdscore.E001" not in check_ids()


@pytest.mark.parametrize("missing", ZOHO)
def test_missing_zoho_credential_is_a_warning_naming_it(configured, missing):
    setattr(configured, missing, "")
    [warning] = [m for m in run_checks() if m.id == "sync.W002"]
    assert missing in warning.msg
    # A warning, not an error: `check` still passes so the web server and cluster start.
    call_command("check")


def test_no_webhook_token_or_secret_warns(configured):
    for name in WEBHOOK_AUTH:
        setattr(configured, name, [])
    assert "sync.W003" in check_ids()


@pytest.mark.parametrize("name", WEBHOOK_AUTH)
def test_any_one_webhook_token_or_secret_is_enough(configured, name):
    for other in WEBHOOK_AUTH:
        setattr(configured, other, [])
    setattr(configured, name, ["value"])
    assert "sync.W003" not in check_ids()


def test_q_cluster_retry_not_above_timeout_warns(configured):
    configured.Q_CLUSTER = {**configured.Q_CLUSTER, "retry": configured.Q_CLUSTER["timeout"]}
    assert "sync.W001" in check_ids()


def test_drain_deadline_not_below_q_cluster_timeout_warns(configured):
    configured.TDS_DRAIN_DEADLINE_SECONDS = configured.Q_CLUSTER["timeout"]
    assert "sync.W001" in check_ids()


def test_no_alert_channel_warns_that_alerts_are_recorded_but_nobody_is_notified(configured):
    for name in ALERT_CHANNELS:
        setattr(configured, name, "" if name != "ALERT_EMAIL_TO" else [])
    [warning] = [m for m in run_checks(include_deployment_checks=True) if m.id == "alerts.W001"]
    assert "recorded and shown" in warning.msg and "nobody is notified" in warning.msg


def test_the_channel_warning_is_for_a_deployment_not_every_command(configured):
    for name in ALERT_CHANNELS:
        setattr(configured, name, "" if name != "ALERT_EMAIL_TO" else [])
    assert "alerts.W001" in check_ids(deploy=True)
    assert "alerts.W001" not in check_ids()


def test_e_mail_printed_to_the_console_reaches_nobody(configured):
    for name in ALERT_CHANNELS:
        setattr(configured, name, "" if name != "ALERT_EMAIL_TO" else [])
    configured.ALERT_EMAIL_ADMINS = True
    configured.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert "alerts.W001" in check_ids(deploy=True)
    configured.EMAIL_BACKEND = SMTP
    assert "alerts.W001" not in check_ids(deploy=True)


@pytest.mark.parametrize(
    "channel",
    [
        {"ALERT_EMAIL_TO": ["ops@example.com"], "EMAIL_BACKEND": SMTP},
        {"SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack"},
        {"ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook"},
        {"TELEGRAM_BOT_TOKEN": "123:abc", "TELEGRAM_CHAT_ID": "42"},
    ],
)
def test_any_one_alert_channel_is_enough(configured, channel):
    for name in ALERT_CHANNELS:
        setattr(configured, name, "" if name != "ALERT_EMAIL_TO" else [])
    for name, value in channel.items():
        setattr(configured, name, value)
    assert "alerts.W001" not in check_ids(deploy=True)


def test_telegram_needs_both_its_token_and_chat(configured):
    for name in ALERT_CHANNELS:
        setattr(configured, name, "" if name != "ALERT_EMAIL_TO" else [])
    configured.TELEGRAM_BOT_TOKEN = "123:abc"
    assert "alerts.W001" in check_ids(deploy=True)
