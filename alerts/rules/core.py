"""What every alert rule shares: the Finding it returns, the registry it joins, and small measures.

A rule is a function of `now` registered under its name by `@rule("name")`; the name is given there
only, and the registry stamps it on each finding the rule returns. A rule reads what it watches,
compares it with its threshold from the runtime configuration and returns findings; it writes
nothing. The engine (alerts.engine) turns findings into alerts.

A finding fires at its threshold (value >= threshold), never below. Every rule is written to cost a
few index probes however large the queue and the dead-letter table grow (bench/check_alerts.py):
counts of waiting rows ride the partial claim index, dead letters the open-DLQ index, and anything
"recent" an index on its timestamp.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from alerts.models import Alert

Severity = Alert.Severity
EXCERPT_CHARS = 200
SECRET_WORDS = ("token", "secret", "password", "authorization", "api_key")


@dataclass(frozen=True, kw_only=True)
class Finding:
    subject: str
    severity: str
    title: str
    value: float | None = None
    threshold: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    rule: str = ""  # stamped by the registry: the name the rule was registered under

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}:{self.subject}"[:200]


Rule = Callable[[datetime], list[Finding]]
RULES: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    """Register a rule under `name`; its findings carry that name."""

    def register(check: Rule) -> Rule:
        @functools.wraps(check)
        def named(now: datetime) -> list[Finding]:
            return [replace(finding, rule=name) for finding in check(now)]

        RULES[name] = named
        return named

    return register


def excerpt(payload: Any) -> str:
    """A short look at a payload, with anything that looks like a credential blanked."""
    if isinstance(payload, dict):
        payload = {k: "***" if any(w in str(k).lower() for w in SECRET_WORDS) else v for k, v in payload.items()}
    text = json.dumps(payload, default=str, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


class Liveness(Enum):
    """healthchecks' states for something expected to report every `period`, with `grace` to spare."""

    UP = "up"
    LATE = "late"  # past its period, within grace: shown, nobody told yet
    DOWN = "down"  # past period + grace: alert


def liveness(age: timedelta, *, period: float, grace: float) -> Liveness:
    seconds = age.total_seconds()
    if seconds <= period:
        return Liveness.UP
    return Liveness.LATE if seconds <= period + grace else Liveness.DOWN


def minutes(td: timedelta) -> float:
    return round(td.total_seconds() / 60, 1)
