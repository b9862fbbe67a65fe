"""django-q2 entry points of the watchers: thin functions named by dotted path in the schedules."""

from __future__ import annotations

from django.utils import timezone

from monitoring import rollups


def rollup_metrics() -> int:
    """Schedule `tds-metric-rollup`, each minute: the minute just ended into tds_metrics."""
    return rollups.rollup(timezone.now())
