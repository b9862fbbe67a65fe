"""Channels against real servers on 127.0.0.1: what each message says, retries, and a channel refused."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts import delivery, engine
from alerts.config_keys import ALERT_CLEAR_EVALUATIONS, ALERT_DELIVERY_BACKOFF_SECONDS, ALERT_DELIVERY_MAX_ATTEMPTS
from alerts.models import Alert, AlertDelivery
from tdscore import config
from tests import factories
from tests.alerts.conftest import HOOK, SLACK, TELEGRAM, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LINK = "https://tds.example.com/admin/alerts/alert/"


@pytest.fixture
def backlog_alert(channels_on):
    """An open backlog alert with a notification queued on every channel."""
    alert = Alert.objects.create(
        rule="queue_backlog",
        fingerprint="queue_backlog:all",
        severity=Alert.Severity.WARNING,
        title="Queue backlog: 1,204 rows waiting",
        value=1204,
        threshold=1000,
        context={"entity": "invoices", "object_ids": ["4815"], "reason": "workers behind"},
        first_seen=NOW,
        last_seen=NOW,
    )
    for channel in ("slack", "webhook", "telegram", "email"):
        AlertDelivery.objects.create(alert=alert, channel=channel, next_attempt_at=NOW, created_at=NOW)
    return alert


def deliver(at: datetime = NOW):
    with time_machine.travel(at, tick=False):
        return delivery.deliver_due(at)


def test_slack_message_has_severity_title_value_threshold_entity_and_link(backlog_alert, channels_on):
    deliver()
    [request] = channels_on.to(SLACK)
    message = request.json()
    assert message["text"] == "[WARNING] Queue backlog: 1,204 rows waiting"
    fields = " ".join(f["text"] for f in message["blocks"][1]["fields"])
    assert "*Severity*\nWARNING" in fields
    assert "*Value*\n1,204 (threshold 1,000)" in fields
    assert "*Entity*\ninvoices" in fields
    buttons = [e["url"] for e in message["blocks"][2]["elements"]]
    assert buttons == [f"{LINK}{backlog_alert.pk}/change/", "https://tds.example.com/dashboard/"]


def test_telegram_message_has_severity_title_value_threshold_and_link(backlog_alert, channels_on):
    deliver()
    [request] = channels_on.to(TELEGRAM)
    message = request.json()
    assert message["chat_id"] == "42" and message["parse_mode"] == "HTML"
    assert message["text"].startswith("<b>[WARNING] Queue backlog: 1,204 rows waiting</b>")
    assert "<b>Value:</b> 1,204 (threshold 1,000)" in message["text"]
    assert f'href="{LINK}{backlog_alert.pk}/change/"' in message["text"]


def test_webhook_signature_verifies_with_the_standard_webhooks_library(backlog_alert, channels_on):
    deliver()
    [request] = channels_on.to(HOOK)
    headers = {name.lower(): value for name, value in request.headers.items()}
    with time_machine.travel(NOW + timedelta(seconds=2), tick=False):  # the receiver, a moment later
        verified = Webhook(WEBHOOK_SECRET).verify(request.body, headers)
    assert verified["type"] == "alert.raised"
    data = verified["data"]
    assert (data["severity"], data["title"], data["value"], data["threshold"]) == (
        "warning",
        "Queue backlog: 1,204 rows waiting",
        1204,
        1000,
    )
    assert data["url"] == f"{LINK}{backlog_alert.pk}/change/"


def test_webhook_signed_with_another_secret_does_not_verify(backlog_alert, channels_on, settings):
    settings.ALERT_WEBHOOK_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    deliver()
    [request] = channels_on.to(HOOK)
    headers = {name.lower(): value for name, value in request.headers.items()}
    with time_machine.travel(NOW, tick=False), pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(request.body, headers)


def test_a_webhook_retry_carries_the_same_message_id(backlog_alert, channels_on):
    channels_on.answer(HOOK, 503)
    deliver()
    deliver(NOW + timedelta(hours=1))
    first, retry = channels_on.to(HOOK)
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    # Signed when sent, so a receiver's five-minute tolerance accepts the retry.
    assert int(retry.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 3600


def test_email_has_text_and_html_with_severity_value_and_link(backlog_alert):
    deliver()
    [message] = mail.outbox
    assert message.to == ["ops@example.com"]
    assert message.subject == "[WARNING] Queue backlog: 1,204 rows waiting"
    assert "Value: 1,204 (threshold 1,000)" in message.body
    assert f"Alert: {LINK}{backlog_alert.pk}/change/" in message.body
    html, kind = message.alternatives[0]
    assert kind == "text/html"
    assert "<th align='left'>Severity</th><td>WARNING</td>" in html
    assert f"{LINK}{backlog_alert.pk}/change/" in html


# Committed: the channels send from threads of their own, which read the users on their own connections.
@pytest.mark.django_db(transaction=True)
def test_without_alert_email_to_the_admin_users_get_the_email(backlog_alert, settings):
    settings.ALERT_EMAIL_TO = []
    settings.ALERT_EMAIL_ADMINS = True
    factories.user("root", is_superuser=True, is_staff=True)
    factories.user("gone", is_superuser=True, is_staff=True, is_active=False)
    factories.user("clerk")
    deliver()
    [message] = mail.outbox
    assert message.to == ["root@example.com"]


def test_with_nobody_to_write_to_the_email_fails_for_good(backlog_alert, settings):
    settings.ALERT_EMAIL_TO = []
    settings.ALERT_EMAIL_ADMINS = True
    deliver()
    row = AlertDelivery.objects.get(alert=backlog_alert, channel="email")
    assert row.status == AlertDelivery.Status.FAILED
    assert "nobody to write to" in row.error
    assert mail.outbox == []


def test_every_notification_is_a_delivery_row(backlog_alert):
    deliver()
    rows = AlertDelivery.objects.filter(alert=backlog_alert)
    assert sorted(rows.values_list("channel", "status", "attempts")) == [
        ("email", "sent", 1),
        ("slack", "sent", 1),
        ("telegram", "sent", 1),
        ("webhook", "sent", 1),
    ]


def test_a_channel_answering_500_is_retried_while_the_others_are_delivered_at_once(backlog_alert, channels_on):
    channels_on.answer(SLACK, 500)
    tally = deliver()
    assert tally == {"sent": 3, "retry": 1}
    slack = AlertDelivery.objects.get(channel="slack")
    assert (slack.status, slack.attempts) == ("pending", 1)
    assert "slack answered 500" in slack.error
    assert slack.next_attempt_at == NOW + timedelta(seconds=config.get(ALERT_DELIVERY_BACKOFF_SECONDS))
    channels_on.answer(SLACK, 200)
    deliver(NOW + timedelta(seconds=10))  # before its backoff: not tried
    assert len(channels_on.to(SLACK)) == 1
    deliver(slack.next_attempt_at)
    slack.refresh_from_db()
    assert (slack.status, slack.attempts, len(channels_on.to(SLACK))) == ("sent", 2, 2)


def test_a_slow_channel_does_not_delay_the_others(backlog_alert, channels_on):
    channels_on.answer(SLACK, 500, delay=1.5)
    deliver()
    assert len(channels_on.to(SLACK)) == len(channels_on.to(TELEGRAM)) == 1
    # Telegram was answered while Slack was still thinking about its 500.
    assert channels_on.answered[TELEGRAM] < channels_on.answered[SLACK] - 1


def test_retries_back_off_and_stop_after_the_configured_attempts(backlog_alert, channels_on):
    config.update_many({ALERT_DELIVERY_MAX_ATTEMPTS: 3, ALERT_DELIVERY_BACKOFF_SECONDS: 10})
    channels_on.answer(TELEGRAM, 502)
    waits = []
    at = NOW
    for _ in range(3):
        deliver(at)
        row = AlertDelivery.objects.get(channel="telegram")
        waits.append((row.next_attempt_at - at).total_seconds())
        at = row.next_attempt_at
    assert waits[:2] == [10, 20]
    row = AlertDelivery.objects.get(channel="telegram")
    assert (row.status, row.attempts) == ("failed", 3)


def test_a_404_channel_stops_retrying_and_raises_an_alert_about_itself(backlog_alert, channels_on):
    channels_on.answer(SLACK, 404)
    deliver()
    slack = AlertDelivery.objects.get(channel="slack")
    assert (slack.status, slack.attempts) == ("failed", 1)
    deliver(NOW + timedelta(days=1))
    assert len(channels_on.to(SLACK)) == 1
    engine.evaluate(NOW + timedelta(days=1))
    alert = Alert.objects.get(rule="channel_failing")
    assert (alert.fingerprint, alert.severity) == ("channel_failing:slack", "error")
    assert "404" in alert.context["reason"]
    # Told through the channels that work, not the one that refuses.
    assert set(alert.deliveries.values_list("channel", flat=True)) == {"webhook", "telegram", "email"}


@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_refusal_is_permanent(backlog_alert, channels_on, status):
    channels_on.answer(TELEGRAM, status)
    deliver()
    assert AlertDelivery.objects.get(channel="telegram").status == "failed"


def test_a_channel_that_delivers_again_resolves_its_channel_alert(backlog_alert, channels_on):
    config.update(ALERT_CLEAR_EVALUATIONS, 1)
    channels_on.answer(SLACK, 404)
    deliver()
    engine.evaluate(NOW)
    channels_on.answer(SLACK, 200)
    factories.dead_letter()
    engine.evaluate(NOW + timedelta(minutes=1))  # the DLQ alert goes out on slack too
    deliver(NOW + timedelta(minutes=1))
    engine.evaluate(NOW + timedelta(minutes=2))
    assert Alert.objects.get(rule="channel_failing").status == Alert.Status.RESOLVED


def test_an_unreachable_channel_is_transient(backlog_alert, channels_on, settings):
    settings.SLACK_WEBHOOK_URL = "http://127.0.0.1:9/slack"  # nothing listens on the discard port
    deliver()
    slack = AlertDelivery.objects.get(channel="slack")
    assert (slack.status, slack.attempts) == ("pending", 1)
    assert "ConnectError" in slack.error
