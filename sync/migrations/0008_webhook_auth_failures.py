# The failed-authentication counter moves here from tdscore; its table, created there, stays as it is.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0007_dead_letters_open_by_reason"),
        ("tdscore", "0006_webhook_auth_failures_to_sync"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookAuthFailures",
                    fields=[
                        ("address", models.CharField(max_length=64, primary_key=True, serialize=False)),
                        ("window_started_at", models.DateTimeField()),
                        ("failures", models.PositiveIntegerField(default=0)),
                    ],
                    options={"db_table": "tds_webhook_auth_failures"},
                ),
            ],
            database_operations=[],
        ),
    ]
