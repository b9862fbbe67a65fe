"""What the alerts app adds to the watchers' /metrics and `tds_status` (registered in AlertsConfig.ready)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from alerts.models import Alert


def open_alerts_by_severity(now: datetime) -> Iterator[GaugeMetricFamily]:
    unresolved = Alert.objects.exclude(status=Alert.Status.RESOLVED)
    found = dict(unresolved.values_list("severity").annotate(n=Count("id")).order_by())
    family = GaugeMetricFamily("tds_alerts_open", "Alerts not resolved, by severity", labels=["severity"])
    for severity in Alert.Severity.values:
        family.add_metric([severity], found.get(severity, 0))
    yield family


def open_alerts(now: datetime) -> list[dict]:
    unresolved = Alert.objects.exclude(status=Alert.Status.RESOLVED).order_by("-last_seen")
    return [
        {
            "id": a.pk,
            "rule": a.rule,
            "severity": a.severity,
            "status": a.status,
            "title": a.title,
            "occurrences": a.occurrences,
            "last_seen": a.last_seen.isoformat() if a.last_seen else None,
        }
        for a in unresolved
    ]


def open_alert_count(now: datetime) -> int:
    return Alert.objects.exclude(status=Alert.Status.RESOLVED).count()
