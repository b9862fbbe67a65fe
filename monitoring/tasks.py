"""django-q2 entry points of tdscore (CONVENTIONS "django-q2 at the edges"): thin, by dotted path."""

from __future__ import annotations

from django.utils import timezone

from tdscore import rollups


def rollup_metrics() -> int:
    """Schedule `tds-metric-rollup`, each minute: the minute just ended into tds_metrics."""
    return rollups.rollup(timezone.now())
