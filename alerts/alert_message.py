"""What every channel says about an alert: one set of facts, each channel lays them out its own way."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from alerts.channels import Event
from alerts.models import Alert, AlertDelivery

PREFIX = {
    AlertDelivery.Event.RAISED: "",
    AlertDelivery.Event.ESCALATED: "ESCALATED: ",
    AlertDelivery.Event.REMINDER: "Still open: ",
    AlertDelivery.Event.RESOLVED: "Resolved: ",
    AlertDelivery.Event.TEST: "Test: ",
}


def number(value: float | None) -> str:
    if value is None:
        return "-"
    # One way for every figure: whole numbers with thousands separators (88,864, never 8.886e+04),
    # small fractions to three significant digits (0.0523).
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Notice:
    event: str
    severity: str
    title: str
    headline: str
    value: str  # "1,204 (threshold 1,000)"
    entity: str
    reason: str
    object_ids: list[str]
    excerpt: str
    link: str  # the alert's page in the admin
    dashboard: str
    occurrences: int

    def facts(self) -> list[tuple[str, str]]:
        """(label, text) pairs, the empty ones left out."""
        rows = [
            ("Severity", self.severity.upper()),
            ("Value", self.value),
            ("Entity", self.entity),
            ("Reason", self.reason),
            ("Objects", ", ".join(self.object_ids)),
            ("Occurrences", str(self.occurrences) if self.occurrences > 1 else ""),
            ("Payload", self.excerpt),
        ]
        return [(label, text) for label, text in rows if text]

    def text(self) -> str:
        lines = [self.headline, ""]
        lines += [f"{label}: {text}" for label, text in self.facts()]
        lines += ["", f"Alert: {self.link}", f"Dashboard: {self.dashboard}"]
        return "\n".join(lines)


def build(alert: Alert, event: Event) -> Notice:
    context = alert.context or {}
    base = settings.TDS_BASE_URL.rstrip("/")
    severity = alert.severity
    return Notice(
        event=event.kind,
        severity=severity,
        title=alert.title,
        headline=f"{PREFIX.get(event.kind, '')}[{severity.upper()}] {alert.title}",
        value=f"{number(alert.value)} (threshold {number(alert.threshold)})" if alert.value is not None else "",
        entity=str(context.get("entity", "")),
        reason=str(context.get("reason", "")),
        object_ids=[str(i) for i in context.get("object_ids", [])][:10],
        excerpt=str(context.get("excerpt", ""))[:300],
        link=base + reverse("admin:alerts_alert_change", args=[alert.pk]),
        dashboard=f"{base}/dashboard/",
        occurrences=alert.occurrences,
    )
