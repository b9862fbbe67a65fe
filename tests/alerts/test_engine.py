"""Findings become alerts by fingerprint: once, counted, resolved when clear, escalated, silenced."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from alerts import alert_round, engine
from alerts.config_keys import ALERT_CLEAR_EVALUATIONS, ALERT_ESCALATION_MINUTES, ALERT_RENOTIFY_MINUTES
from alerts.models import Alert, AlertDelivery, AlertSilence
from sync.config_keys import HEARTBEAT_GRACE_SECONDS
from sync.models import DeadLetter
from tdscore import config
from tests import factories
from tests.alerts.conftest import TELEGRAM

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def dlq_alert() -> Alert:
    return Alert.objects.get(rule="dlq_size", fingerprint="dlq_size:products")


@pytest.fixture
def broken(only_channels):
    """One dead letter (dlq_threshold is 1) and a live worker; notifications to Slack only."""
    only_channels("slack")
    config.update(HEARTBEAT_GRACE_SECONDS, 86400)
    factories.worker_heartbeat(last_seen_at=NOW)
    return factories.dead_letter(object_id="1001")


def test_a_condition_seen_ten_times_is_one_alert_with_ten_occurrences_and_one_notification(broken):
    for minute in range(10):
        engine.evaluate(NOW + timedelta(minutes=minute))
    alert = dlq_alert()
    assert (alert.occurrences, alert.first_seen, alert.last_seen) == (10, NOW, NOW + timedelta(minutes=9))
    assert alert.deliveries.count() == 1
    assert Alert.objects.filter(rule="dlq_size").count() == 1


def test_alert_names_entity_object_reason_and_payload_excerpt(broken):
    engine.evaluate(NOW)
    context = dlq_alert().context
    assert (context["entity"], context["object_ids"], context["reason"]) == ("products", ["1001"], "retries_exhausted")
    assert '"item_id": "1001"' in context["excerpt"]


def test_a_cleared_condition_resolves_after_the_configured_clear_evaluations(broken):
    config.update(ALERT_CLEAR_EVALUATIONS, 3)
    engine.evaluate(NOW)
    DeadLetter.objects.update(resolved_at=NOW)
    for minute in (1, 2):
        engine.evaluate(NOW + timedelta(minutes=minute))
        assert dlq_alert().status == Alert.Status.OPEN
    engine.evaluate(NOW + timedelta(minutes=3))
    alert = Alert.objects.get(rule="dlq_size")
    assert (alert.status, alert.resolved_at, alert.resolved_by) == ("resolved", NOW + timedelta(minutes=3), "")
    assert list(alert.deliveries.values_list("event", flat=True).order_by("id")) == ["raised", "resolved"]


def test_a_flapping_condition_keeps_one_alert_and_pages_once(broken):
    config.update(ALERT_CLEAR_EVALUATIONS, 3)
    letter = DeadLetter.objects.get()
    for minute in range(8):
        # Present on even minutes, gone on odd ones: never clear three evaluations in a row.
        DeadLetter.objects.filter(pk=letter.pk).update(resolved_at=None if minute % 2 == 0 else NOW)
        engine.evaluate(NOW + timedelta(minutes=minute))
    assert Alert.objects.filter(rule="dlq_size").count() == 1
    assert dlq_alert().status == Alert.Status.OPEN
    assert AlertDelivery.objects.count() == 1


def test_after_resolving_a_new_occurrence_is_a_new_alert(broken):
    config.update(ALERT_CLEAR_EVALUATIONS, 1)
    engine.evaluate(NOW)
    DeadLetter.objects.update(resolved_at=NOW)
    engine.evaluate(NOW + timedelta(minutes=1))
    factories.dead_letter(object_id="1002")
    engine.evaluate(NOW + timedelta(minutes=2))
    assert list(Alert.objects.filter(rule="dlq_size").values_list("status", flat=True).order_by("id")) == [
        "resolved",
        "open",
    ]


def test_a_silence_suppresses_notifications_but_records_the_alert(broken):
    AlertSilence.objects.create(rule="dlq_size", until=NOW + timedelta(hours=1), created_by="operator")
    result = engine.evaluate(NOW)
    assert dlq_alert().status == Alert.Status.OPEN
    assert AlertDelivery.objects.count() == 0
    assert result.silenced == 1


def test_a_silence_of_one_fingerprint_leaves_the_rules_other_subjects_notified(broken):
    factories.dead_letter(queue_item=factories.queue_item("invoices", "9"), entity="invoices")
    AlertSilence.objects.create(fingerprint="dlq_size:products", until=NOW + timedelta(hours=1))
    engine.evaluate(NOW)
    notified = set(AlertDelivery.objects.values_list("alert__fingerprint", flat=True))
    assert notified == {"dlq_size:invoices"}


def test_an_expired_silence_no_longer_suppresses(broken):
    AlertSilence.objects.create(rule="dlq_size", until=NOW - timedelta(seconds=1))
    engine.evaluate(NOW)
    assert AlertDelivery.objects.count() == 1


def test_an_unacknowledged_critical_escalates_after_the_configured_minutes(channels_on, only_channels, settings):
    only_channels("slack", "telegram")
    settings.ALERT_ESCALATION_CHANNELS = ["telegram"]
    config.update(ALERT_ESCALATION_MINUTES, 30)
    with time_machine.travel(NOW, tick=False) as clock:
        alert_round.run()  # no worker has ever beaten: worker down, critical
        alert = Alert.objects.get(rule="worker_heartbeat")
        assert alert.severity == Alert.Severity.CRITICAL
        clock.move_to(NOW + timedelta(minutes=29))
        alert_round.run()
        assert Alert.objects.get(pk=alert.pk).escalated_at is None
        clock.move_to(NOW + timedelta(minutes=30))
        alert_round.run()
        alert_round.run()
    alert.refresh_from_db()
    assert alert.escalated_at == NOW + timedelta(minutes=30)
    escalations = alert.deliveries.filter(event=AlertDelivery.Event.ESCALATED)
    assert list(escalations.values_list("channel", "status")) == [("telegram", "sent")]
    assert channels_on.to(TELEGRAM)[-1].json()["text"].startswith("<b>ESCALATED: [CRITICAL] Worker down")


def test_an_acknowledged_critical_is_not_escalated(only_channels):
    only_channels("slack")
    engine.evaluate(NOW)
    alert = Alert.objects.get(rule="worker_heartbeat")
    alert.acknowledge(actor=factories.actor("operator"), now=NOW)
    engine.evaluate(NOW + timedelta(hours=2))
    alert.refresh_from_db()
    assert alert.escalated_at is None
    assert not alert.deliveries.filter(event=AlertDelivery.Event.ESCALATED).exists()


def test_a_long_open_alert_is_re_notified_at_the_configured_interval(broken):
    config.update(ALERT_RENOTIFY_MINUTES, 60)
    engine.evaluate(NOW)
    engine.evaluate(NOW + timedelta(minutes=59))
    assert dlq_alert().deliveries.count() == 1
    engine.evaluate(NOW + timedelta(minutes=60))
    engine.evaluate(NOW + timedelta(minutes=61))
    events = list(dlq_alert().deliveries.values_list("event", flat=True).order_by("id"))
    assert events == ["raised", "reminder"]


def test_a_repeat_that_got_worse_takes_the_worse_severity_and_notifies_again(broken):
    alert = Alert.objects.create(
        rule="dlq_size", fingerprint="dlq_size:products", severity=Alert.Severity.WARNING, title="old", first_seen=NOW
    )
    engine.evaluate(NOW)
    alert.refresh_from_db()
    assert (alert.severity, alert.occurrences) == (Alert.Severity.ERROR, 2)
    assert alert.deliveries.count() == 1


def test_no_channel_enabled_records_and_shows_alerts_without_deliveries(settings):
    factories.dead_letter()
    engine.evaluate(timezone.now())
    assert Alert.objects.filter(rule="dlq_size").exists()
    assert AlertDelivery.objects.count() == 0
