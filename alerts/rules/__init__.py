"""The alert rules, by subject. Importing this package registers every rule in `RULES`, in the
order below, which is the order the engine evaluates them."""

# Each module registers its rules as it is imported; the order is the engine's.
from alerts.rules import (  # noqa: F401, I001
    queue,
    dead_letters,
    workers,
    freshness,
    zoho,
    reconciliation,
    schema_drift,
    alert_channels,
)
from alerts.rules.core import RULES, Finding, Liveness, Rule, Severity, excerpt, liveness, minutes, rule

__all__ = ["RULES", "Finding", "Liveness", "Rule", "Severity", "excerpt", "liveness", "minutes", "rule"]
