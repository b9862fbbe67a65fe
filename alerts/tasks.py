"""django-q2 entry point for the alert schedule."""

from __future__ import annotations

from alerts import alert_round


def check_alerts() -> dict:
    done = alert_round.run()
    return {
        "findings": len(done.evaluation.findings),
        "raised": len(done.evaluation.raised),
        "resolved": len(done.evaluation.resolved),
        "deliveries": dict(done.deliveries),
    }
