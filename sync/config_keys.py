"""The configuration keys of the sync pipeline: queue, workers, pulls, webhooks, healing, retention.

Registered with tdscore.config when this module is imported (SyncConfig.ready); read them as
`config.get(BATCH_SIZE)`.
"""

from sync.entities import ENTITIES
from tdscore.config import Key, KeyType

# Retries of a queue row.
MAX_RETRY_ATTEMPTS = Key(
    "max_retry_attempts", KeyType.INT, 3, "retry", "Tries in total before a row is dead-lettered.", min=1, max=100
)
RETRY_BACKOFF_BASE_MS = Key(
    "retry_backoff_base_ms", KeyType.INT, 1000, "retry", "Backoff ceiling of the first retry.", min=1, max=3_600_000
)
RETRY_BACKOFF_MAX_MS = Key(
    "retry_backoff_max_ms", KeyType.INT, 60000, "retry", "Highest backoff ceiling.", min=1, max=86_400_000
)
LEASE_EXPIRY_LIMIT = Key(
    "lease_expiry_limit",
    KeyType.INT,
    3,
    "retry",
    "Expired leases before a row is dead-lettered as lease_expired.",
    min=1,
    max=100,
)

# Draining the queue.
BATCH_SIZE = Key(
    "batch_size", KeyType.INT, 100, "performance", "Queue rows a worker claims and applies at once.", min=1, max=5000
)
LOCK_TIMEOUT_SECONDS = Key(
    "lock_timeout_seconds",
    KeyType.INT,
    300,
    "performance",
    "Lease on claimed rows; renewed while draining.",
    min=1,
    max=86_400,
)
QUEUE_POLL_INTERVAL_MS = Key(
    "queue_poll_interval_ms",
    KeyType.INT,
    1000,
    "performance",
    "How often an idle drainer looks for work.",
    min=10,
    max=60_000,
)
DRAINERS = Key(
    "drainers",
    KeyType.INT,
    1,
    "performance",
    "Drain tasks the watchdog keeps running (one cluster worker each).",
    min=1,
    max=64,
)
PAUSED_ENTITIES = Key(
    "paused_entities",
    KeyType.SLUGS,
    [],
    "sync",
    "Entities whose queued changes wait until resumed.",
    choices=tuple(ENTITIES),
    items="entities",
)

# Workers' heartbeats: written here, read by readiness and the alert rules.
HEARTBEAT_PERIOD_SECONDS = Key(
    "heartbeat_period_seconds", KeyType.INT, 30, "alert", "How often a worker records its heartbeat.", min=1, max=3600
)
HEARTBEAT_GRACE_SECONDS = Key(
    "heartbeat_grace_seconds",
    KeyType.INT,
    90,
    "alert",
    "A heartbeat older than period plus grace is missing.",
    min=1,
    max=86_400,
)

# Whether the queue moves: read by readiness (degraded) and the alert rules (late, down).
QUEUE_BACKLOG_THRESHOLD = Key(
    "queue_backlog_threshold", KeyType.INT, 1000, "alert", "Pending rows that raise a backlog alert.", min=1, max=10**9
)
QUEUE_PROGRESS_PERIOD_SECONDS = Key(
    "queue_progress_period_seconds",
    KeyType.INT,
    300,
    "alert",
    "Due rows waiting this long with no row finished: the queue is late (readiness: degraded).",
    min=1,
    max=86_400,
)
QUEUE_PROGRESS_GRACE_SECONDS = Key(
    "queue_progress_grace_seconds",
    KeyType.INT,
    300,
    "alert",
    "After the period, this much more and the queue is down (alert).",
    min=1,
    max=86_400,
)

# Versions: how far ahead of its arrival a Zoho version may be (payloads.version_problem).
MAX_VERSION_SKEW_MINUTES = Key(
    "max_version_skew_minutes",
    KeyType.INT,
    1440,
    "sync",
    "A version this far past the moment it arrived is refused (validation): it would freeze the object.",
    min=1,
    max=525_600,
)

# Schema drift: fields Zoho sends that the mapping does not read (sync.schema_drift).
SCHEMA_DRIFT_ENABLED = Key(
    "schema_drift_enabled",
    KeyType.BOOL,
    True,
    "sync",
    "Record the fields Zoho sends that the mapping does not read (schema drift).",
)

# Pulls, reconciliation and their schedules.
PULL_OVERLAP_SECONDS = Key(
    "pull_overlap_seconds", KeyType.INT, 300, "sync", "Pull cursors are re-read this far back.", min=0, max=86_400
)
ZOHO_BUDGET_RESERVE = Key(
    "zoho_budget_reserve",
    KeyType.FLOAT,
    0.1,
    "sync",
    "Share of the Zoho daily and minute budget kept for repairs.",
    min=0,
    max=0.9,
)
ZOHO_CALL_RETRIES = Key(
    "zoho_call_retries",
    KeyType.INT,
    3,
    "zoho",
    "Retries of a call after a 429, 5xx or dropped connection.",
    min=0,
    max=10,
)
INCREMENTAL_SYNC_INTERVAL_MINUTES = Key(
    "incremental_sync_interval_minutes", KeyType.INT, 60, "sync", "How often incremental pulls run.", min=1, max=1440
)
FULL_SYNC_SCHEDULE_CRON = Key(
    "full_sync_schedule_cron", KeyType.CRON, "0 2 * * *", "sync", "When the full pull runs (TIME_ZONE)."
)
STOCK_SYNC_INTERVAL_MINUTES = Key(
    "stock_sync_interval_minutes", KeyType.INT, 15, "sync", "How often stock snapshots are pulled.", min=1, max=1440
)
RECONCILIATION_ENABLED = Key(
    "reconciliation_enabled", KeyType.BOOL, True, "reconciliation", "Run the nightly reconciliation."
)
RECONCILIATION_SCHEDULE_CRON = Key(
    "reconciliation_schedule_cron", KeyType.CRON, "0 2 * * *", "reconciliation", "When reconciliation runs (TIME_ZONE)."
)

# Webhook authentication.
WEBHOOK_AUTH_FAILURE_LIMIT = Key(
    "webhook_auth_failure_limit",
    KeyType.INT,
    20,
    "security",
    "Failed webhook authentications from one address per window before it is answered 429.",
    min=1,
    max=10**6,
)
WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS = Key(
    "webhook_auth_failure_window_seconds",
    KeyType.INT,
    60,
    "security",
    "Window over which failed webhook authentications are counted.",
    min=1,
    max=86_400,
)

# Healing.
HEAL_INTERVAL_MINUTES = Key("heal_interval_minutes", KeyType.INT, 15, "heal", "How often heal runs.", min=1, max=1440)
HEAL_REDRIVE_LADDER_MINUTES = Key(
    "heal_redrive_ladder_minutes",
    KeyType.INTS,
    [15, 60, 360, 1440],
    "heal",
    "Minutes after a transient dead letter (retries_exhausted, lease_expired) that heal replays it: "
    "the first, the second… time; past the last step it is left to an operator.",
    min=1,
    max=43_200,
)
PARENT_WAIT_MINUTES = Key(
    "parent_wait_minutes",
    KeyType.INT,
    30,
    "heal",
    "Minutes a row's parent (its customer, vendor, item or invoice) may stay missing before heal fetches "
    "that parent from Zoho, once.",
    min=0,
    max=10_080,
)

# Retention and cleanup.
INBOX_RETENTION_DAYS = Key(
    "inbox_retention_days", KeyType.INT, 7, "retention", "Days finished inbox rows are kept.", min=1, max=3650
)
LOG_RETENTION_DAYS = Key(
    "log_retention_days", KeyType.INT, 90, "retention", "Days sync logs are kept.", min=1, max=3650
)
METRIC_RETENTION_DAYS = Key(
    "metric_retention_days", KeyType.INT, 30, "retention", "Days metric points are kept.", min=1, max=3650
)
QUEUE_RETENTION_DAYS = Key(
    "queue_retention_days", KeyType.INT, 7, "retention", "Days finished queue rows are kept.", min=1, max=3650
)
DEAD_LETTER_RETENTION_DAYS = Key(
    "dead_letter_retention_days", KeyType.INT, 90, "retention", "Days resolved dead letters are kept.", min=1, max=3650
)
ZOHO_CALL_LOG_RETENTION_DAYS = Key(
    "zoho_call_log_retention_days", KeyType.INT, 2, "retention", "Days the Zoho call log is kept.", min=1, max=3650
)
TASK_RESULT_RETENTION_DAYS = Key(
    "task_result_retention_days",
    KeyType.INT,
    7,
    "retention",
    "Days django-q2's stored task results are kept.",
    min=1,
    max=3650,
)
CLEANUP_SCHEDULE_CRON = Key(
    "cleanup_schedule_cron", KeyType.CRON, "30 3 * * *", "retention", "When cleanup runs (TIME_ZONE)."
)
CLEANUP_BATCH_SIZE = Key(
    "cleanup_batch_size", KeyType.INT, 5000, "retention", "Rows cleanup deletes per statement.", min=1, max=100_000
)
