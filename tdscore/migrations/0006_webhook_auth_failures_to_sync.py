# The failed-authentication counter belongs to the webhook door in `sync`, which writes it; the table stays.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tdscore", "0005_merge_queue_stall_key"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WebhookAuthFailures")],
            database_operations=[],
        ),
    ]
