"""Alert actions through the admin changelist: acknowledge, resolve, silence, send test; a readable detail."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertDelivery, AlertSilence
from tests import factories
from tests.alerts.conftest import SLACK

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:alerts_alert_changelist")


@pytest.fixture
def operator(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", None))
    return client


def act(client, action: str, *alerts: Alert):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [a.pk for a in alerts]}, follow=True)


def test_acknowledge_action_records_who_and_when_for_each_selected(operator):
    first, second = factories.alert(fingerprint="a"), factories.alert(fingerprint="b")
    act(operator, "acknowledge", first, second)
    for alert in (first, second):
        alert.refresh_from_db()
        assert (alert.status, alert.acknowledged_by) == ("acknowledged", "root")
        assert alert.acknowledged_at is not None


def test_acknowledging_an_acknowledged_alert_is_reported_not_overwritten(operator):
    alert = factories.alert(status=Alert.Status.ACKNOWLEDGED, acknowledged_by="first")
    page = act(operator, "acknowledge", alert)
    assert f"#{alert.pk} (acknowledged)" in page.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == "first"


def test_resolve_action_resolves_open_and_acknowledged_alerts(operator):
    open_one = factories.alert(fingerprint="a")
    acked = factories.alert(fingerprint="b", status=Alert.Status.ACKNOWLEDGED)
    act(operator, "resolve", open_one, acked)
    assert set(Alert.objects.values_list("status", "resolved_by")) == {("resolved", "root")}


def test_silence_action_mutes_each_selected_fingerprint_for_an_hour(operator):
    first, second = factories.alert(fingerprint="queue_backlog:a"), factories.alert(fingerprint="queue_backlog:b")
    before = timezone.now()
    act(operator, "silence_hour", first, second)
    silences = AlertSilence.objects.order_by("fingerprint")
    assert [(s.rule, s.fingerprint, s.created_by) for s in silences] == [
        ("queue_backlog", "queue_backlog:a", "root"),
        ("queue_backlog", "queue_backlog:b", "root"),
    ]
    assert all(timedelta(minutes=59) < s.until - before <= timedelta(hours=1, seconds=5) for s in silences)


def test_silence_for_a_day_action(operator):
    act(operator, "silence_day", factories.alert())
    assert AlertSilence.objects.get().until - timezone.now() > timedelta(hours=23)


def test_changelist_filters_by_status_severity_and_rule(operator):
    factories.alert("dlq_size", fingerprint="x", severity=Alert.Severity.ERROR)
    factories.alert("queue_backlog", fingerprint="y", status=Alert.Status.RESOLVED)
    for params, expected in [
        ({"status": "open"}, {"dlq_size"}),
        ({"severity": "error"}, {"dlq_size"}),
        ({"rule": "queue_backlog"}, {"queue_backlog"}),
    ]:
        page = operator.get(CHANGELIST, params)
        assert {a.rule for a in page.context["cl"].result_list} == expected


def test_changelist_offers_a_send_test_button_per_enabled_channel(operator, only_channels):
    only_channels("slack", "telegram")
    page = operator.get(CHANGELIST).content.decode()
    assert "Send test to slack" in page and "Send test to telegram" in page
    assert "Send test to webhook" not in page


def test_send_test_from_the_admin_delivers_and_records_it(operator, channels_on):
    page = operator.post(reverse("admin:alerts_alert_send_test"), {"channel": "slack"}, follow=True)
    assert "Test alert sent to slack." in page.content.decode()
    [request] = channels_on.to(SLACK)
    assert request.json()["text"].startswith("Test: [INFO] Test alert from TDS Core (sent by root)")
    delivery = AlertDelivery.objects.get()
    assert (delivery.channel, delivery.event, delivery.status) == ("slack", "test", "sent")


def test_send_test_to_a_refusing_channel_says_why(operator, channels_on):
    channels_on.answer(SLACK, 404)
    page = operator.post(reverse("admin:alerts_alert_send_test"), {"channel": "slack"}, follow=True)
    assert "Test alert to slack failed: slack answered 404" in page.content.decode()


def test_send_test_to_a_channel_not_enabled_is_refused(operator):
    page = operator.post(reverse("admin:alerts_alert_send_test"), {"channel": "slack"}, follow=True)
    assert "Channel slack is not enabled." in page.content.decode()
    assert not AlertDelivery.objects.exists()


def test_alert_detail_shows_context_as_readable_json_and_its_deliveries(operator):
    alert = factories.alert(context={"entity": "invoices", "object_ids": ["4815"]})
    page = operator.get(reverse("admin:alerts_alert_change", args=[alert.pk])).content.decode()
    assert "&quot;entity&quot;: &quot;invoices&quot;," in page  # indented JSON, one key a line
    assert "<pre" in page
    assert "email" in page and "pending" in page  # the delivery factories.alert made


def test_silence_with_neither_rule_nor_fingerprint_is_refused(operator):
    page = operator.post(
        reverse("admin:alerts_alertsilence_add"),
        {"rule": "", "fingerprint": "", "until_0": "2030-01-01", "until_1": "00:00:00", "reason": ""},
    )
    assert "an empty silence would mute everything" in page.content.decode()
    assert not AlertSilence.objects.exists()
