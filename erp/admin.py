"""The ERP tables are written only by sync: the admin shows them, read-only, with their lines."""

from django.apps import apps
from django.contrib import admin

from erp.models import ZohoRecord
from tdscore.admin import ReadOnlyAdmin


def _lines_inline(model):
    relation = next((r for r in model._meta.related_objects if r.get_accessor_name() == "lines"), None)
    if relation is None:
        return []
    inline = type(
        f"{relation.related_model.__name__}Inline",
        (admin.TabularInline,),
        {
            "model": relation.related_model,
            "extra": 0,
            "can_delete": False,
            "raw_id_fields": [f.name for f in relation.related_model._meta.fields if f.is_relation],
            "has_add_permission": lambda self, request, obj=None: False,
            "has_change_permission": lambda self, request, obj=None: False,
        },
    )
    return [inline]


class ZohoRecordAdmin(ReadOnlyAdmin):
    list_filter = [("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["zoho_id"]
    date_hierarchy = "synced_at"


COMMON = {f.name for f in ZohoRecord._meta.fields} | {"id"}


def _register_all() -> None:
    for model in apps.get_app_config("erp").get_models():
        if not issubclass(model, ZohoRecord):
            continue
        own = [f.name for f in model._meta.fields if f.name not in COMMON and not f.is_relation]
        attrs = {
            "list_display": ["zoho_id", *own[:4], "zoho_last_modified", "synced_at", "deleted_at"],
            "inlines": _lines_inline(model),
            "raw_id_fields": [f.name for f in model._meta.fields if f.is_relation],
        }
        admin.site.register(model, type(f"{model.__name__}Admin", (ZohoRecordAdmin,), attrs))


_register_all()
