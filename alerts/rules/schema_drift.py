"""Schema drift: Zoho sends fields the mapping does not read, and no operator has looked yet."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from alerts.rules.core import Finding, Severity, rule
from sync.models import SchemaDrift

# Paths named in the alert per entity; the API and the admin list them all.
PATHS_SHOWN = 10


@rule("schema_drift")
def schema_drift(now: datetime) -> list[Finding]:
    """One info alert while any drift is unacknowledged; it clears once every row is acknowledged."""
    # The table holds one row per field ever seen: a few dozen at most, read whole.
    rows = SchemaDrift.objects.filter(acknowledged_at__isnull=True).order_by("entity", "path")
    paths: dict[str, list[str]] = defaultdict(list)
    for entity, path in rows.values_list("entity", "path"):
        paths[entity].append(path)
    if not paths:
        return []
    total = sum(len(p) for p in paths.values())
    named = "; ".join(f"{entity}: {', '.join(p[:PATHS_SHOWN])}" for entity, p in paths.items())
    return [
        Finding(
            subject="all",
            severity=Severity.INFO,
            title=f"Zoho sends {total} field{'' if total == 1 else 's'} the mapping does not read ({named})"[:250],
            value=total,
            threshold=1,
            context={
                "entity": next(iter(paths)),
                "entities": sorted(paths),
                "paths": {entity: p[:PATHS_SHOWN] for entity, p in paths.items()},
                "reason": "map each field or list it as unread on purpose, then acknowledge it",
            },
        )
    ]
