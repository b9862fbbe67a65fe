from datetime import UTC, datetime

import pytest

from alerts.models import Alert, AlertStateError
from tests import factories

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _alert(**fields) -> Alert:
    return Alert.objects.create(
        rule="dlq_size", fingerprint="dlq_size:all", severity=Alert.Severity.ERROR, title="DLQ", **fields
    )


@pytest.mark.django_db
def test_acknowledge_records_who_and_when():
    alert = _alert()
    alert.acknowledge(actor=factories.actor("operator"), now=NOW)
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.acknowledged_at) == ("acknowledged", "operator", NOW)


@pytest.mark.django_db
def test_acknowledging_twice_is_refused():
    alert = _alert()
    alert.acknowledge(actor=factories.actor("first"), now=NOW)
    with pytest.raises(AlertStateError):
        Alert.objects.get(pk=alert.pk).acknowledge(actor=factories.actor("second"), now=NOW)
    assert Alert.objects.get(pk=alert.pk).acknowledged_by == "first"


@pytest.mark.django_db
def test_resolve_from_acknowledged_records_who_and_when():
    alert = _alert(status=Alert.Status.ACKNOWLEDGED)
    alert.resolve(actor=factories.actor("operator"), now=NOW)
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.resolved_at) == ("resolved", "operator", NOW)


@pytest.mark.django_db
def test_resolving_a_resolved_alert_is_refused():
    alert = _alert(status=Alert.Status.RESOLVED)
    with pytest.raises(AlertStateError):
        alert.resolve(actor=factories.actor("operator"), now=NOW)
