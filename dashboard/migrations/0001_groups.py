"""The two groups: "TDS operators" (every action, every view and change of TDS Core's models) and
"TDS viewers" (every view). Idempotent; the permission rows are made first on a fresh database."""

from django.db import migrations

from tdscore import permissions


def create_groups(apps, schema_editor):
    permissions.ensure_groups(apps)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[permissions.OPERATORS, permissions.VIEWERS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tdscore", "0006_webhook_auth_failures_to_sync"),
        ("sync", "0009_permissions"),
        ("zoho", "0003_token_encrypted_and_zoho_cap"),
        ("erp", "0003_permissions"),
        ("alerts", "0004_permissions"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
