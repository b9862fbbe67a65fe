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

from tdscore import config, permissions
from tdscore.models import Configuration, Metric
from tdscore.permissions import Perm

admin.site.site_header = "TDS Core operations console"
admin.site.site_title = "TDS Core"
admin.site.index_title = "Sync, ERP tables, alerts and configuration"
admin.site.site_url = reverse_lazy("dashboard:index")  # "View site" opens the dashboard


def may(perm: Perm) -> Callable:
    """A ModelAdmin's `has_<name>_permission` method for an action declared with
    `@admin.action(permissions=[name])`: Django offers and runs the action only when it answers yes."""

    def has_permission(model_admin, request) -> bool:
        return permissions.allows(request.user, perm)

    return has_permission


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that are facts (inbox, audit trail, runs) or that only their state machine moves
    (queue rows, dead letters): viewable, never edited or deleted by hand; actions do the moving."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def render_change_form(self, request, context, *args, **kwargs):
        # A page's own buttons post to the changelist's actions: it shows those this user is offered.
        context["offered_actions"] = set(self.get_actions(request))
        return super().render_change_form(request, context, *args, **kwargs)


# --- How values look ------------------------------------------------------------------------------


def pretty_json(value) -> str:
    """Indented, wrapped JSON: long strings break instead of running off the page."""
    if value in (None, "", {}, []):
        return "—"
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return _pre(text)


def _pre(text: str) -> str:
    # The style inline too, so the text wraps wherever it is shown (admin, dashboard, a saved page).
    return format_html('<pre class="tds-pre" style="white-space:pre-wrap">{}</pre>', text)


def pretty_text(text: str) -> str:
    """A body or traceback as it is, wrapped; shown as JSON when it parses as JSON."""
    if not text:
        return "—"
    try:
        return pretty_json(json.loads(text))
    except ValueError:
        return _pre(text)


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
