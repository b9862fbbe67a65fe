"""`queue_stall_seconds` and `queue_progress_period_seconds` were one concept under two keys: how
long due rows may wait with no row finished before the queue counts as not moving. Readiness now
reads the period, and the stall key goes.

An operator's stall value is kept: when it differs from its default and the period was not set by
an operator (no row, or the row holds its default), the period takes it. Then the stall row is
deleted. Values are frozen here, not read from the apps' configuration keys, so this migration
means the same thing forever.
"""

from django.db import migrations

STALL = "queue_stall_seconds"
STALL_DEFAULT = 300
PERIOD = "queue_progress_period_seconds"
PERIOD_DEFAULT = 300
PERIOD_ROW = {
    "value_type": "int",
    "category": "alert",
    "description": "Due rows waiting this long with no row finished: the queue is late (readiness: degraded).",
}


def merge_stall_into_period(apps, schema_editor):
    Configuration = apps.get_model("tdscore", "Configuration")
    stall = Configuration.objects.filter(key=STALL).first()
    if stall is None:
        return
    if stall.value != STALL_DEFAULT:
        period = Configuration.objects.filter(key=PERIOD).first()
        if period is None:
            Configuration.objects.create(
                key=PERIOD, value=stall.value, updated_at=stall.updated_at, updated_by=stall.updated_by, **PERIOD_ROW
            )
        elif period.value == PERIOD_DEFAULT:
            period.value, period.updated_at, period.updated_by = stall.value, stall.updated_at, stall.updated_by
            period.save(update_fields=["value", "updated_at", "updated_by"])
    stall.delete()


class Migration(migrations.Migration):
    dependencies = [("tdscore", "0004_metric_rollups")]
    operations = [migrations.RunPython(merge_stall_into_period, migrations.RunPython.noop)]
