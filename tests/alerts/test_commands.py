"""check_alerts and send_test_alert, and the schedule that runs check_alerts every minute."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import Schedule

from alerts import tasks
from alerts.models import Alert, AlertDelivery
from tests import factories
from tests.alerts.conftest import HOOK, SLACK, TELEGRAM

pytestmark = pytest.mark.django_db


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_check_alerts_prints_what_it_found_and_notifies(channels_on, only_channels):
    only_channels("slack")
    factories.worker_heartbeat(last_seen_at=timezone.now())
    factories.dead_letter()
    printed = run("check_alerts")
    assert "error    dlq_size:products: 1 unresolved dead letter for products (value 1, threshold 1)" in printed
    assert "1 finding: 1 raised" in printed
    assert "deliveries: 1 sent" in printed
    assert channels_on.to(SLACK)[0].json()["text"] == "[ERROR] 1 unresolved dead letter for products"


def test_check_alerts_with_nothing_wrong_finds_nothing(channels_on):
    factories.worker_heartbeat(last_seen_at=timezone.now())
    assert "0 findings" in run("check_alerts")
    assert Alert.objects.count() == 0


def test_the_schedule_task_evaluates_and_delivers(channels_on, only_channels):
    only_channels("telegram")
    done = tasks.check_alerts()  # no worker ever beat: worker down
    assert done["raised"] == 1 and done["deliveries"] == {"sent": 1}
    assert "Worker down" in channels_on.to(TELEGRAM)[0].json()["text"]


def test_setup_schedules_installs_check_alerts_every_minute():
    call_command("setup_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="tds-check-alerts")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("alerts.tasks.check_alerts", "I", 1)


def test_send_test_alert_reaches_every_enabled_channel(channels_on):
    printed = run("send_test_alert")
    assert printed.splitlines() == ["email: sent", "slack: sent", "webhook: sent", "telegram: sent"]
    assert len(channels_on.to(SLACK)) == len(channels_on.to(HOOK)) == len(channels_on.to(TELEGRAM)) == 1
    assert set(AlertDelivery.objects.values_list("event", flat=True)) == {"test"}
    # Stored resolved: a test is never shown as trouble.
    assert not Alert.objects.exclude(status=Alert.Status.RESOLVED).exists()


def test_send_test_alert_to_one_channel(channels_on):
    assert run("send_test_alert", "--channel", "webhook") == "webhook: sent\n"
    assert channels_on.to(SLACK) == []


def test_send_test_alert_fails_naming_the_channel_that_did_not_deliver(channels_on):
    channels_on.answer(SLACK, 500)
    with pytest.raises(CommandError, match="not delivered: slack"):
        run("send_test_alert")
    assert AlertDelivery.objects.get(channel="slack").status == AlertDelivery.Status.FAILED
    assert AlertDelivery.objects.get(channel="telegram").status == AlertDelivery.Status.SENT


def test_send_test_alert_to_a_channel_not_enabled_says_what_to_set():
    with pytest.raises(CommandError, match="set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID"):
        run("send_test_alert", "--channel", "telegram")


def test_send_test_alert_with_no_channel_enabled_fails():
    with pytest.raises(CommandError, match="nobody is notified"):
        run("send_test_alert")
