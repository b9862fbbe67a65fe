"""The groups made before the action log existed get its view permission: "TDS viewers" and "TDS
operators" read it. On a fresh database the groups do not exist yet, and dashboard's groups
migration gives them every view permission, this one included, when it makes them."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ("TDS operators", "TDS viewers")


def grant(apps, schema_editor):
    create_permissions(global_apps.get_app_config("tdscore"), apps=apps, verbosity=0)
    permission = apps.get_model("auth", "Permission").objects.get(
        content_type__app_label="tdscore", codename="view_operatoraction"
    )
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GROUPS):
        group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tdscore", "0007_operator_actions"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
