"""Seed the first eleven configuration keys with their defaults.

Values are frozen here, not read from tdscore.config, so this migration means the same thing
forever. Keys added later get their rows from tdscore.config.ensure_rows() after every migrate.
"""

from django.db import migrations

DEFAULTS = [
    ("max_retry_attempts", 3, "int", "retry", "Tries in total before a row is dead-lettered."),
    ("retry_backoff_base_ms", 1000, "int", "retry", "Backoff ceiling of the first retry."),
    ("retry_backoff_max_ms", 60000, "int", "retry", "Highest backoff ceiling."),
    ("batch_size", 100, "int", "performance", "Queue rows a worker claims and applies at once."),
    ("lock_timeout_seconds", 300, "int", "performance", "Lease on claimed rows; renewed while draining."),
    ("queue_poll_interval_ms", 1000, "int", "performance", "How often an idle drainer looks for work."),
    ("failure_rate_threshold", 0.05, "float", "alert", "Failure rate over the last hour that raises an alert."),
    ("queue_backlog_threshold", 1000, "int", "alert", "Pending rows that raise a backlog alert."),
    ("sync_lag_threshold_minutes", 15, "int", "alert", "Cursor or oldest-pending age that raises a lag alert."),
    ("reconciliation_enabled", True, "bool", "reconciliation", "Run the nightly reconciliation."),
    ("reconciliation_schedule_cron", "0 2 * * *", "cron", "reconciliation", "When reconciliation runs (TIME_ZONE)."),
]


def seed(apps, schema_editor):
    Configuration = apps.get_model("tdscore", "Configuration")
    for key, value, value_type, category, description in DEFAULTS:
        Configuration.objects.get_or_create(
            key=key,
            defaults={"value": value, "value_type": value_type, "category": category, "description": description},
        )


class Migration(migrations.Migration):
    dependencies = [("tdscore", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
