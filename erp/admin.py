"""The ERP tables are written only by sync: the admin shows them, read-only, with their lines,
amounts as money and the raw Zoho payload as wrapped JSON."""

from collections.abc import Callable

from django.apps import apps
from django.contrib import admin
from django.db.models import DecimalField, Model

from erp.models import Customer, Vendor, ZohoRecord
from tdscore.admin import ReadOnlyAdmin, may, money, pretty_json, shown_as
from tdscore.permissions import Perm

SHOWN = "_shown"  # suffix of the admin method that shows a field readably


def _readable(model: type[Model]) -> tuple[list[str], dict]:
    """The model's fields in order, amounts and JSON swapped for methods that show them readably."""
    names, methods = [], {}
    for field in model._meta.fields:
        if field.auto_created:
            continue
        if isinstance(field, DecimalField):
            methods[field.name + SHOWN] = shown_as(money, field.name, field.verbose_name)
        elif field.get_internal_type() == "JSONField":
            methods[field.name + SHOWN] = shown_as(pretty_json, field.name, field.verbose_name)
        names.append(field.name + SHOWN if field.name + SHOWN in methods else field.name)
    return names, methods


def _lines_inline(model):
    relation = next((r for r in model._meta.related_objects if r.get_accessor_name() == "lines"), None)
    if relation is None:
        return []
    line_model = relation.related_model
    names, methods = _readable(line_model)
    names = [name for name in names if name not in (relation.field.name, "raw")]
    inline = type(
        f"{line_model.__name__}Inline",
        (admin.TabularInline,),
        {
            "model": line_model,
            "extra": 0,
            "can_delete": False,
            "fields": names,
            "readonly_fields": names,
            "has_add_permission": lambda self, request, obj=None: False,
            "has_change_permission": lambda self, request, obj=None: False,
            **methods,
        },
    )
    return [inline]


# What the app above shows at the top of an ERP row's page, which this app cannot know: who wrote
# the row's current version and its history (sync/admin.py fills it). Name → (label, HTML of the row).
ROW_PANELS: dict[str, tuple[str, Callable[[ZohoRecord], str]]] = {}


class ZohoRecordAdmin(ReadOnlyAdmin):
    list_filter = [("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["zoho_id"]
    date_hierarchy = "synced_at"
    # For the erasure action sync's admin adds to the contact tables (the permission is the ERP's).
    has_redact_permission = may(Perm.REDACT_CONTACT)

    def get_fields(self, request, obj=None):
        return [*ROW_PANELS, *super().get_fields(request, obj)] if obj else super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [*ROW_PANELS, *super().get_readonly_fields(request, obj)]

    def __getattr__(self, name: str):
        # The admin reads a read-only field's value and label from a method of this name.
        if name in ROW_PANELS:
            label, render = ROW_PANELS[name]
            return admin.display(description=label)(render)
        raise AttributeError(name)


COMMON = {f.name for f in ZohoRecord._meta.fields} | {"id"}


def _columns(names: list[str]) -> list[str]:
    """Five of the model's own columns fit beside the common ones at 1,366 px: three that name the
    record (name, number, SKU first), two amounts (rate, total, balance first)."""
    own = [name for name in names if name.removesuffix(SHOWN) not in COMMON and not name.endswith("_ref")]
    texts = sorted((name for name in own if not name.endswith(SHOWN)), key=lambda name: not name.endswith(NAMING))
    amounts = sorted((name for name in own if name.endswith(SHOWN)), key=lambda name: name not in HEADLINE)
    return [*texts[:3], *amounts[:2]]


NAMING = ("name", "_number", "sku")
HEADLINE = {f"{name}{SHOWN}" for name in ("rate", "total", "balance")}


def _register_all() -> None:
    for model in apps.get_app_config("erp").get_models():
        if not issubclass(model, ZohoRecord):
            continue
        names, methods = _readable(model)
        attrs = {
            "list_display": ["zoho_id", *_columns(names), "zoho_last_modified", "synced_at", "deleted_at"],
            "fields": names,
            "readonly_fields": [name for name in names if name in methods],
            "inlines": _lines_inline(model),
            **methods,
        }
        admin.site.register(model, type(f"{model.__name__}Admin", (ZohoRecordAdmin,), attrs))


_register_all()


def contact_admins() -> list[admin.ModelAdmin]:
    """The customers' and vendors' admins, to which sync's admin adds the erasure action."""
    return [admin.site.get_model_admin(model) for model in (Customer, Vendor)]
