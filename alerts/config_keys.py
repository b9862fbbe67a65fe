"""The configuration keys of the alert engine: its rules' thresholds, resolving and delivery.

Registered with tdscore.config when this module is imported (AlertsConfig.ready). The queue's
backlog and progress keys and the heartbeat keys, which readiness reads too, are sync's
(sync.config_keys).
"""

from tdscore.config import Key, KeyType

# The rules' thresholds.
FAILURE_RATE_THRESHOLD = Key(
    "failure_rate_threshold",
    KeyType.FLOAT,
    0.05,
    "alert",
    "Failure rate over the last hour that raises an alert.",
    min=0,
    max=1,
)
FAILURE_RATE_MIN_ROWS = Key(
    "failure_rate_min_rows",
    KeyType.INT,
    20,
    "alert",
    "Rows finished in the hour before the failure rate counts.",
    min=1,
    max=10**6,
)
DLQ_THRESHOLD = Key(
    "dlq_threshold", KeyType.INT, 1, "alert", "Unresolved dead letters that raise an alert.", min=1, max=10**9
)
SYNC_LAG_THRESHOLD_MINUTES = Key(
    "sync_lag_threshold_minutes",
    KeyType.INT,
    15,
    "alert",
    "Cursor or oldest-pending age that raises a lag alert.",
    min=1,
    max=10_080,
)
STUCK_PROCESSING_MINUTES = Key(
    "stuck_processing_minutes",
    KeyType.INT,
    15,
    "alert",
    "A lease expired or a run silent this long is stuck.",
    min=1,
    max=10_080,
)
FRESHNESS_THRESHOLD_MINUTES = Key(
    "freshness_threshold_minutes",
    KeyType.INT,
    15,
    "alert",
    "p95 of ERP commit minus Zoho modification over the last hour of webhooks.",
    min=1,
    max=10_080,
)
WEBHOOK_SILENCE_MINUTES = Key(
    "webhook_silence_minutes",
    KeyType.INT,
    60,
    "alert",
    "No webhook for this long while pulls find changes: webhooks stopped.",
    min=1,
    max=10_080,
)
ZOHO_WEBHOOK_DAILY_CAP = Key(
    "zoho_webhook_daily_cap",
    KeyType.INT,
    1000,
    "alert",
    "Webhooks Zoho delivers a day before it stops.",
    min=1,
    max=10**7,
)
ZOHO_CAP_ALERT_RATIO = Key(
    "zoho_cap_alert_ratio",
    KeyType.FLOAT,
    0.8,
    "alert",
    "Share of a daily cap (webhooks, API calls) that raises an alert.",
    min=0.01,
    max=1,
)
RECONCILIATION_DRIFT_THRESHOLD = Key(
    "reconciliation_drift_threshold",
    KeyType.INT,
    1,
    "alert",
    "Drifted records in a reconciliation that raise an alert.",
    min=1,
    max=10**9,
)
HEAL_REPEAT_RUNS = Key(
    "heal_repeat_runs",
    KeyType.INT,
    3,
    "alert",
    "Heal runs in a row finding the same problem that raise an alert.",
    min=2,
    max=100,
)

# The engine: resolving, escalating, re-notifying.
ALERT_CLEAR_EVALUATIONS = Key(
    "alert_clear_evaluations",
    KeyType.INT,
    3,
    "alert",
    "Evaluations in a row without the condition before an alert resolves.",
    min=1,
    max=100,
)
ALERT_ESCALATION_MINUTES = Key(
    "alert_escalation_minutes",
    KeyType.INT,
    30,
    "alert",
    "An unacknowledged critical alert is escalated after this.",
    min=1,
    max=10_080,
)
ALERT_RENOTIFY_MINUTES = Key(
    "alert_renotify_minutes",
    KeyType.INT,
    240,
    "alert",
    "Re-notify an alert still open after this (0: never).",
    min=0,
    max=10_080,
)

# Delivery to the channels.
ALERT_DELIVERY_MAX_ATTEMPTS = Key(
    "alert_delivery_max_attempts",
    KeyType.INT,
    6,
    "alert",
    "Tries of one notification before it is marked failed.",
    min=1,
    max=100,
)
ALERT_DELIVERY_BACKOFF_SECONDS = Key(
    "alert_delivery_backoff_seconds",
    KeyType.INT,
    30,
    "alert",
    "Wait before the first retry of a notification; doubles each time, up to 1 h.",
    min=1,
    max=3600,
)
