"""Typed runtime configuration (SPEC §7).

One registry declares every key with its type, default, range, category and description. Rows in
`tds_configuration` override the defaults; a process keeps a copy for `TDS_CONFIG_CACHE_SECONDS`,
so a change made anywhere is seen everywhere within about a second, without a restart, and one
made in this process is seen at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from croniter import croniter
from django.conf import settings
from django.db import transaction
from django.utils import timezone


class ConfigError(ValueError):
    """A key that does not exist, or a value of the wrong type or out of range."""


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # int, float, bool, str, cron, slugs, ints
    default: Any
    category: str
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    def validate(self, value: Any) -> Any:
        """Return `value` in this key's type, or raise ConfigError saying what is wrong."""
        checker = getattr(self, f"_check_{self.type}")
        value = checker(value)
        if self.type == "ints":
            return value  # each item was checked against the range
        if self.min is not None and value < self.min:
            raise ConfigError(f"{self.name}: {value} is below the minimum {self.min:g}")
        if self.max is not None and value > self.max:
            raise ConfigError(f"{self.name}: {value} is above the maximum {self.max:g}")
        return value

    def _check_int(self, value: Any) -> int:
        # bool is an int in Python; `true` for a count is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
            raise ConfigError(f"{self.name}: expected a whole number, got {value!r}")
        return value

    def _check_float(self, value: Any) -> float:
        if isinstance(value, bool):
            raise ConfigError(f"{self.name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.name}: expected a number, got {value!r}") from None

    def _check_bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise ConfigError(f"{self.name}: expected true or false, got {value!r}")

    def _check_str(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{self.name}: expected text, got {value!r}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.name}: {value!r} is not one of {', '.join(self.choices)}")
        return value

    def _check_cron(self, value: Any) -> str:
        if not isinstance(value, str) or not croniter.is_valid(value):
            raise ConfigError(f"{self.name}: {value!r} is not a valid cron expression")
        return value

    def _check_ints(self, value: Any) -> list[int]:
        """A list of whole numbers (or "15,60,360"), each within min and max, which apply per item."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{self.name}: expected a list of whole numbers, got {value!r}")
        each = Key(self.name, "int", 0, self.category, "", self.min, self.max)
        return [each.validate(item) for item in value]

    def _check_slugs(self, value: Any) -> list[str]:
        from sync.entities import ENTITIES

        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.name}: expected a list of entity slugs, got {value!r}")
        unknown = sorted(set(value) - set(ENTITIES))
        if unknown:
            raise ConfigError(f"{self.name}: unknown entities {', '.join(unknown)}")
        return sorted(set(value))


# The first eleven keys are fixed by SPEC §7 (names and defaults); the rest serve later features.
# Ranges allow short durations (a 1 s lease) so tests across processes need no long waits.
_KEYS = [
    Key("max_retry_attempts", "int", 3, "retry", "Tries in total before a row is dead-lettered.", 1, 100),
    Key("retry_backoff_base_ms", "int", 1000, "retry", "Backoff ceiling of the first retry.", 1, 3_600_000),
    Key("retry_backoff_max_ms", "int", 60000, "retry", "Highest backoff ceiling.", 1, 86_400_000),
    Key("batch_size", "int", 100, "performance", "Queue rows a worker claims and applies at once.", 1, 5000),
    Key("lock_timeout_seconds", "int", 300, "performance", "Lease on claimed rows; renewed while draining.", 1, 86400),
    Key("queue_poll_interval_ms", "int", 1000, "performance", "How often an idle drainer looks for work.", 10, 60000),
    Key(
        "failure_rate_threshold", "float", 0.05, "alert", "Failure rate over the last hour that raises an alert.", 0, 1
    ),
    Key("queue_backlog_threshold", "int", 1000, "alert", "Pending rows that raise a backlog alert.", 1, 10**9),
    Key(
        "sync_lag_threshold_minutes",
        "int",
        15,
        "alert",
        "Cursor or oldest-pending age that raises a lag alert.",
        1,
        10080,
    ),
    Key("reconciliation_enabled", "bool", True, "reconciliation", "Run the nightly reconciliation."),
    Key("reconciliation_schedule_cron", "cron", "0 2 * * *", "reconciliation", "When reconciliation runs (TIME_ZONE)."),
    # Later features.
    Key("paused_entities", "slugs", [], "sync", "Entities whose queued changes wait until resumed."),
    Key(
        "drainers", "int", 1, "performance", "Drain tasks the watchdog keeps running (one cluster worker each).", 1, 64
    ),
    Key(
        "lease_expiry_limit",
        "int",
        3,
        "retry",
        "Expired leases before a row is dead-lettered as lease_expired.",
        1,
        100,
    ),
    Key("pull_overlap_seconds", "int", 300, "sync", "Pull cursors are re-read this far back.", 0, 86400),
    Key(
        "zoho_budget_reserve",
        "float",
        0.1,
        "sync",
        "Share of the Zoho daily and minute budget kept for repairs.",
        0,
        0.9,
    ),
    Key("zoho_breaker_cooldown_seconds", "int", 60, "zoho", "How long the Zoho breaker stays open.", 1, 3600),
    Key("zoho_breaker_window_seconds", "int", 60, "zoho", "Recent calls the breaker's failure rate reads.", 1, 3600),
    Key("zoho_breaker_min_calls", "int", 10, "zoho", "Calls in the window before the rate can open it.", 1, 1000),
    Key("zoho_breaker_failure_rate", "float", 0.5, "zoho", "Failure share of the window that opens it.", 0.01, 1),
    Key("zoho_breaker_consecutive_failures", "int", 5, "zoho", "Failures in a row that open it.", 1, 1000),
    Key("zoho_auth_retry_seconds", "int", 300, "zoho", "In the auth state, one caller retries after this.", 1, 86400),
    Key("zoho_rate_limit_max_wait_seconds", "int", 90, "zoho", "Longest a call waits for a rate slot.", 0, 3600),
    Key("zoho_call_retries", "int", 3, "zoho", "Retries of a call after a 429, 5xx or dropped connection.", 0, 10),
    Key("incremental_sync_interval_minutes", "int", 60, "sync", "How often incremental pulls run.", 1, 1440),
    Key("full_sync_schedule_cron", "cron", "0 2 * * *", "sync", "When the full pull runs (TIME_ZONE)."),
    Key("stock_sync_interval_minutes", "int", 15, "sync", "How often stock snapshots are pulled.", 1, 1440),
    Key("dlq_threshold", "int", 1, "alert", "Unresolved dead letters that raise an alert.", 1, 10**9),
    Key("heartbeat_period_seconds", "int", 30, "alert", "How often a worker records its heartbeat.", 1, 3600),
    Key(
        "heartbeat_grace_seconds", "int", 90, "alert", "A heartbeat older than period plus grace is missing.", 1, 86400
    ),
    Key(
        "alert_escalation_minutes",
        "int",
        30,
        "alert",
        "An unacknowledged critical alert is escalated after this.",
        1,
        10080,
    ),
    Key("inbox_retention_days", "int", 7, "retention", "Days finished inbox rows are kept.", 1, 3650),
    Key("log_retention_days", "int", 90, "retention", "Days sync logs are kept.", 1, 3650),
    Key("metric_retention_days", "int", 30, "retention", "Days metric points are kept.", 1, 3650),
    Key(
        "webhook_auth_failure_limit",
        "int",
        20,
        "security",
        "Failed webhook authentications from one address per window before it is answered 429.",
        1,
        10**6,
    ),
    Key(
        "webhook_auth_failure_window_seconds",
        "int",
        60,
        "security",
        "Window over which failed webhook authentications are counted.",
        1,
        86400,
    ),
    # Alerts (issue 10): the rule engine, its rules' thresholds and the channels' retries.
    Key(
        "alert_clear_evaluations",
        "int",
        3,
        "alert",
        "Evaluations in a row without the condition before an alert resolves.",
        1,
        100,
    ),
    Key(
        "alert_renotify_minutes", "int", 240, "alert", "Re-notify an alert still open after this (0: never).", 0, 10080
    ),
    Key(
        "alert_delivery_max_attempts",
        "int",
        6,
        "alert",
        "Tries of one notification before it is marked failed.",
        1,
        100,
    ),
    Key(
        "alert_delivery_backoff_seconds",
        "int",
        30,
        "alert",
        "Wait before the first retry of a notification; doubles each time, up to 1 h.",
        1,
        3600,
    ),
    Key(
        "failure_rate_min_rows",
        "int",
        20,
        "alert",
        "Rows finished in the hour before the failure rate counts.",
        1,
        10**6,
    ),
    Key(
        "queue_progress_period_seconds",
        "int",
        300,
        "alert",
        "Due rows waiting this long with no row finished: the queue is late.",
        1,
        86400,
    ),
    Key(
        "queue_progress_grace_seconds",
        "int",
        300,
        "alert",
        "After the period, this much more and the queue is down (alert).",
        1,
        86400,
    ),
    Key(
        "stuck_processing_minutes", "int", 15, "alert", "A lease expired or a run silent this long is stuck.", 1, 10080
    ),
    Key(
        "freshness_threshold_minutes",
        "int",
        15,
        "alert",
        "p95 of ERP commit minus Zoho modification over the last hour of webhooks.",
        1,
        10080,
    ),
    Key(
        "webhook_silence_minutes",
        "int",
        60,
        "alert",
        "No webhook for this long while pulls find changes: webhooks stopped.",
        1,
        10080,
    ),
    Key("zoho_webhook_daily_cap", "int", 1000, "alert", "Webhooks Zoho delivers a day before it stops.", 1, 10**7),
    Key(
        "zoho_cap_alert_ratio",
        "float",
        0.8,
        "alert",
        "Share of a daily cap (webhooks, API calls) that raises an alert.",
        0.01,
        1,
    ),
    Key(
        "reconciliation_drift_threshold",
        "int",
        1,
        "alert",
        "Drifted records in a reconciliation that raise an alert.",
        1,
        10**9,
    ),
    Key(
        "heal_repeat_runs",
        "int",
        3,
        "alert",
        "Heal runs in a row finding the same problem that raise an alert.",
        2,
        100,
    ),
    # Operations (issue 12): healing, retention, schedules.
    Key(
        "heal_redrive_ladder_minutes",
        "ints",
        [15, 60, 360, 1440],
        "heal",
        "Minutes after a transient dead letter (retries_exhausted, lease_expired) that heal replays it: "
        "the first, the second… time; past the last step it is left to an operator.",
        1,
        43200,
    ),
    Key("heal_interval_minutes", "int", 15, "heal", "How often heal runs.", 1, 1440),
    Key("queue_retention_days", "int", 7, "retention", "Days finished queue rows are kept.", 1, 3650),
    Key("dead_letter_retention_days", "int", 90, "retention", "Days resolved dead letters are kept.", 1, 3650),
    Key("zoho_call_log_retention_days", "int", 2, "retention", "Days the Zoho call log is kept.", 1, 3650),
    Key("task_result_retention_days", "int", 7, "retention", "Days django-q2's stored task results are kept.", 1, 3650),
    Key("cleanup_schedule_cron", "cron", "30 3 * * *", "retention", "When cleanup runs (TIME_ZONE)."),
    Key("cleanup_batch_size", "int", 5000, "retention", "Rows cleanup deletes per statement.", 1, 100000),
    # --- HTML dashboard (issue 11) ---
    Key("dashboard_refresh_seconds", "int", 15, "dashboard", "How often /dashboard/ refreshes its panels.", 1, 3600),
    # Queue and readiness (issue 9: the queue shows degraded when its oldest due row stops moving).
    Key(
        "queue_stall_seconds",
        "int",
        300,
        "alert",
        "The oldest due row waiting this long while no row finished in that time: the queue is not moving.",
        1,
        86400,
    ),
]
REGISTRY: dict[str, Key] = {key.name: key for key in _KEYS}

_lock = threading.Lock()
_cache: dict[str, Any] = {}
_loaded_at = float("-inf")


def _load() -> dict[str, Any]:
    from tdscore.models import Configuration

    stored = dict(Configuration.objects.values_list("key", "value"))
    return {name: stored.get(name, key.default) for name, key in REGISTRY.items()}


def get(name: str) -> Any:
    """The current value of a key: stored row, else the registry default."""
    global _cache, _loaded_at
    if name not in REGISTRY:
        raise ConfigError(f"unknown configuration key {name!r}")
    if time.monotonic() - _loaded_at > settings.TDS_CONFIG_CACHE_SECONDS:
        with _lock:
            _cache, _loaded_at = _load(), time.monotonic()
    return _cache[name]


def invalidate() -> None:
    global _loaded_at
    _loaded_at = float("-inf")


def update_many(values: dict[str, Any], *, by=None) -> dict[str, Any]:
    """Validate every value first, then store them all in one transaction (all or nothing)."""
    from tdscore.models import Configuration

    unknown = sorted(set(values) - set(REGISTRY))
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    cleaned = {name: REGISTRY[name].validate(value) for name, value in values.items()}
    now = timezone.now()
    with transaction.atomic():
        for name, value in cleaned.items():
            key = REGISTRY[name]
            Configuration.objects.update_or_create(
                key=name,
                defaults={
                    "value": value,
                    "value_type": key.type,
                    "category": key.category,
                    "description": key.description,
                    "updated_at": now,
                    "updated_by": by,
                },
            )
    invalidate()
    return cleaned


def update(name: str, value: Any, *, by=None) -> Any:
    return update_many({name: value}, by=by)[name]


def ensure_rows() -> int:
    """Create a row for every registry key that has none, so the admin lists them all."""
    from tdscore.models import Configuration

    existing = set(Configuration.objects.values_list("key", flat=True))
    missing = [
        Configuration(
            key=key.name,
            value=key.default,
            value_type=key.type,
            category=key.category,
            description=key.description,
        )
        for key in REGISTRY.values()
        if key.name not in existing
    ]
    Configuration.objects.bulk_create(missing, ignore_conflicts=True)
    invalidate()
    return len(missing)
