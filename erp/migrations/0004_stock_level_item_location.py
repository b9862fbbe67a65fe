# Stock levels are identified by the pair (item_id, location_id), unique together. Their zoho_id
# used to join the two with a bare ":", so item "sX:b" at location "c" and item "sX" at location
# "b:c" were one row; existing rows keep their columns and get the escaped key (stock_level_key).

from django.db import migrations, models


def _escape(part):
    return part.replace("%", "%25").replace(":", "%3A")


def escape_keys(apps, schema_editor):
    StockLevel = apps.get_model("erp", "StockLevel")
    changed = []
    for level in StockLevel.objects.only("pk", "item_id", "location_id", "zoho_id").iterator(chunk_size=2000):
        key = f"{_escape(level.item_id)}:{_escape(level.location_id)}"
        if level.zoho_id != key:
            changed.append((level, key))
    # Two passes, so a new key never meets an old one still in place: first a placeholder no key
    # can equal (every key holds a ":"), then the key.
    for placeholder in (True, False):
        for level, key in changed:
            level.zoho_id = f"#{level.pk}" if placeholder else key
        StockLevel.objects.bulk_update([level for level, _ in changed], ["zoho_id"], batch_size=2000)


def join_keys(apps, schema_editor):
    StockLevel = apps.get_model("erp", "StockLevel")
    for level in StockLevel.objects.only("pk", "item_id", "location_id").iterator(chunk_size=2000):
        StockLevel.objects.filter(pk=level.pk).update(zoho_id=f"{level.item_id}:{level.location_id}")


class Migration(migrations.Migration):

    dependencies = [
        ("erp", "0003_permissions"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stocklevel",
            name="zoho_id",
            field=models.CharField(max_length=610, unique=True),
        ),
        migrations.RunPython(escape_keys, join_keys),
        migrations.RemoveIndex(
            model_name="stocklevel",
            name="erp_stocklevel_item",
        ),
        migrations.AddConstraint(
            model_name="stocklevel",
            constraint=models.UniqueConstraint(fields=("item_id", "location_id"), name="erp_stocklevel_item_location"),
        ),
    ]
