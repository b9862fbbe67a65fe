"""django-q2 entry point for the alert schedule."""

from __future__ import annotations

from alerts import cycle


def check_alerts() -> dict:
    done = cycle.run()
    return {
        "findings": len(done.evaluation.findings),
        "raised": len(done.evaluation.raised),
        "resolved": len(done.evaluation.resolved),
        "deliveries": dict(done.deliveries),
    }
