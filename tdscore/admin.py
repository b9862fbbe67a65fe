"""The console's shared pieces: read-only pages, and how JSON, money and links between rows look."""

import json
from collections.abc import Callable, Iterable
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import Model
from django.urls import reverse, reverse_lazy
from django.utils.html import format_html, format_html_join

from tdscore import config
from tdscore.models import Configuration, Metric

admin.site.site_header = "TDS Core operations console"
admin.site.site_title = "TDS Core"
admin.site.index_title = "Sync, ERP tables, alerts and configuration"
admin.site.site_url = reverse_lazy("dashboard:index")  # "View site" opens the dashboard


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that are facts (inbox, audit trail, runs) or that only their state machine moves
    (queue rows, dead letters): viewable, never edited or deleted by hand; actions do the moving."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- How values look ------------------------------------------------------------------------------


# Levels of a JSON value indented on a page; deeper ones are shown as DEEPER, with the value as
# stored beside. Indenting has no depth limit of its own: a body nested 1,000 levels (kept, refused at
# the door) ran Python's JSON encoder out of recursion and the page answered 500.
SHOWN_DEPTH = 32
DEEPER = "…"


def pretty_json(value, *, raw: str | None = None) -> str:
    """Indented, wrapped JSON: long strings break instead of running off the page.

    Nested deeper than SHOWN_DEPTH, the levels below are DEEPER, and the raw text (`raw`, else the
    compact JSON) is shown beside; too deep even to encode, the raw text alone.
    """
    if value in (None, "", {}, []):
        return "—"
    shown, cut = _to_depth(value, SHOWN_DEPTH)
    text = json.dumps(shown, indent=2, ensure_ascii=False, default=str)
    if not cut:
        return _pre(text)
    if raw is None:
        try:
            raw = json.dumps(value, ensure_ascii=False, default=str)
        except RecursionError:
            raw = "(too deeply nested to write out)"
    return format_html("{}<p>Nested deeper than {} levels; as stored:</p>{}", _pre(text), SHOWN_DEPTH, _pre(raw))


def _to_depth(value, levels: int) -> tuple[object, bool]:
    """`value` with containers below `levels` replaced by DEEPER, and whether any was."""
    if not isinstance(value, dict | list):
        return value, False
    if levels == 0:
        return DEEPER, True
    items = value.items() if isinstance(value, dict) else enumerate(value)
    out, cut = {}, False
    for key, item in items:
        out[key], below = _to_depth(item, levels - 1)
        cut = cut or below
    return (out if isinstance(value, dict) else list(out.values())), cut


def _pre(text: str) -> str:
    # The style inline too, so the text wraps wherever it is shown (admin, dashboard, a saved page).
    return format_html('<pre class="tds-pre" style="white-space:pre-wrap">{}</pre>', text)


def pretty_text(text: str) -> str:
    """A body or traceback as it is, wrapped; shown as JSON when it parses as JSON."""
    if not text:
        return "—"
    try:
        return pretty_json(json.loads(text), raw=text)
    except ValueError:
        return _pre(text)
    except RecursionError:  # nested too deeply even to parse: the text as it is
        return format_html("<p>Nested too deeply to indent; as stored:</p>{}", _pre(text))


def money(value: Decimal | None) -> str:
    """552.600000 → 552.60, 1234.5 → 1,234.50, 0.125000 → 0.125: two places at least, no padding."""
    if value is None:
        return "—"
    value = Decimal(value)
    places = max(2, -value.normalize().as_tuple().exponent)
    return f"{value:,.{places}f}"


def shown_as(render: Callable, field_name: str, label: str = "") -> Callable:
    """An admin method showing a field through `render` (pretty_json, money…), sortable by the field."""

    @admin.display(description=label or field_name.replace("_", " "), ordering=field_name)
    def show(model_admin, obj) -> str:
        return render(getattr(obj, field_name))

    return show


def change_link(obj: Model | None, text: str = "") -> str:
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[quote(obj.pk)])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


def changelist_link(model: type[Model], text: str, **filters) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    query = "&".join(f"{key}={quote(str(value))}" for key, value in filters.items())
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


def link_list(objects: Iterable[Model]) -> str:
    links = [(change_link(obj),) for obj in objects]
    return format_html_join(", ", "{}", links) if links else "—"


# --- Configuration and metrics ----------------------------------------------------------------------


class ConfigurationForm(forms.ModelForm):
    class Meta:
        model = Configuration
        fields = ["value"]

    def clean_value(self):
        try:
            return config.key_named(self.instance.key).validate(self.cleaned_data["value"])
        except config.ConfigError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Configuration)
class ConfigurationAdmin(admin.ModelAdmin):
    form = ConfigurationForm
    list_display = ["key", "value", "value_type", "category", "updated_at", "updated_by"]
    list_filter = ["category"]
    search_fields = ["key", "description"]
    readonly_fields = ["key", "value_type", "category", "description", "updated_at", "updated_by"]

    def has_add_permission(self, request) -> bool:
        return False  # keys come from the registry

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        # Through the one write path, so validation, audit fields and cache invalidation agree.
        config.update(config.key_named(obj.key), form.cleaned_data["value"], by=request.user)


@admin.register(Metric)
class MetricAdmin(ReadOnlyAdmin):
    list_display = ["name", "value", "labels", "at"]
    list_filter = ["name"]
    date_hierarchy = "at"
