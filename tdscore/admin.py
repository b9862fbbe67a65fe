"""The console's shared pieces: read-only pages, and how JSON, money and links between rows look."""

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

from croniter import croniter
from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import Model
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from tdscore import config, permissions
from tdscore.actions import Actor, Via
from tdscore.enums import Action
from tdscore.models import Configuration, Metric, OperatorAction
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


class SwitchInput(forms.CheckboxInput):
    def value_from_datadict(self, data, files, name):
        # Django's checkbox reads any posted text as ticked; the field decides instead.
        return data.get(name, False)


class SwitchField(forms.BooleanField):
    """A checkbox: ticked is true, unticked false; any other posted value is left to the key's check,
    which refuses it with the reason (a form field would read any text as true)."""

    widget = SwitchInput

    def to_python(self, value):
        if value in (None, "", False, "false", "False"):
            return False
        if value in (True, "on", "true", "True"):
            return True
        return value


def value_field(key: config.Key) -> forms.Field:
    """The form field that fits a key's type: a number within its range, a switch, a choice, a list."""
    common = {"label": "value", "help_text": key.description}
    # The range goes to the browser; the refusal and its reason come from the key's own check.
    bounds = {name: limit for name, limit in (("min", key.min), ("max", key.max)) if limit is not None}
    match key.type:
        case config.KeyType.INT:
            return forms.IntegerField(**common, widget=forms.NumberInput(attrs=bounds))
        case config.KeyType.FLOAT:
            return forms.FloatField(**common, widget=forms.NumberInput(attrs={**bounds, "step": "any"}))
        case config.KeyType.BOOL:
            return SwitchField(**common, required=False)
        case config.KeyType.SLUGS:
            choices = [(name, name) for name in key.allowed() or ()]
            return forms.MultipleChoiceField(
                **common, choices=choices, required=False, widget=forms.CheckboxSelectMultiple
            )
        case config.KeyType.STR if key.allowed():
            return forms.ChoiceField(**common, choices=[(name, name) for name in key.allowed()])
        case config.KeyType.INTS:
            # Shown and typed as "15, 60, 360"; the key's check turns it into a list of numbers.
            return forms.CharField(**common, widget=forms.TextInput(attrs={"size": 40}))
        case _:  # str, cron
            return forms.CharField(**common, widget=forms.TextInput(attrs={"size": 40}))


class ConfigurationForm(forms.ModelForm):
    class Meta:
        model = Configuration
        fields = ["value"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        key = config.key_named(self.instance.key)
        self.fields["value"] = value_field(key)
        if key.type == config.KeyType.INTS:
            self.initial["value"] = ", ".join(str(item) for item in self.instance.value or [])

    def clean_value(self):
        try:
            return config.key_named(self.instance.key).validate(self.cleaned_data["value"])
        except config.ConfigError as exc:
            raise forms.ValidationError(str(exc)) from None


def _range(key: config.Key) -> str:
    if key.min is None and key.max is None:
        return "—"
    low = "" if key.min is None else _bound(key.min)
    high = "" if key.max is None else _bound(key.max)
    return f"{low} to {high}" + (" (each)" if key.type == config.KeyType.INTS else "")


def _bound(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


@admin.register(Configuration)
class ConfigurationAdmin(admin.ModelAdmin):
    form = ConfigurationForm
    list_display = ["key", "value", "value_type", "category", "updated_at", "updated_by"]
    list_filter = ["category"]
    search_fields = ["key", "description"]
    fields = ["key", "description", "value", "value_type", "default", "allowed_range", "next_runs"]
    fields += ["updated_at", "updated_by", "history"]
    readonly_fields = ["key", "value_type", "description", "default", "allowed_range", "next_runs"]
    readonly_fields += ["updated_at", "updated_by", "history"]

    def has_add_permission(self, request) -> bool:
        return False  # keys come from the registry

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="default")
    def default(self, obj: Configuration) -> str:
        return json.dumps(config.key_named(obj.key).default)

    @admin.display(description="range")
    def allowed_range(self, obj: Configuration) -> str:
        return _range(config.key_named(obj.key))

    @admin.display(description="next runs")
    def next_runs(self, obj: Configuration) -> str:
        """For a cron key, when its current value fires next, in TIME_ZONE: a typo shows at a glance."""
        if config.key_named(obj.key).type != config.KeyType.CRON or not croniter.is_valid(obj.value):
            return "—"
        runs = croniter(obj.value, timezone.localtime())
        return ", ".join(f"{runs.get_next(datetime):%a %Y-%m-%d %H:%M %Z}" for _ in range(3))

    @admin.display(description="history")
    def history(self, obj: Configuration) -> str:
        """The key's last changes from any door: who, when, old → new (the action log's rows)."""
        return key_history(obj.key)

    def save_model(self, request, obj, form, change) -> None:
        # Through the one write path, so validation, audit fields, cache invalidation and the action
        # log agree; that path also writes the row's admin history, so Django's own entry is left out.
        config.update(
            config.key_named(obj.key), form.cleaned_data["value"], actor=Actor.of_user(request.user, Via.ADMIN)
        )

    def log_change(self, request, obj, message):
        """config.update wrote the row's admin history already, naming the action."""


# A configuration key's history as its page shows it; the whole log is the action log's list.
HISTORY_ROWS = 10


def key_history(key: str) -> str:
    rows = OperatorAction.objects.filter(action=Action.CONFIG_CHANGE, target=key)[:HISTORY_ROWS]
    if not rows:
        return "no change recorded"
    lines = format_html_join(
        "",
        "<li>{} · {} ({}) · <code>{}</code> → <code>{}</code></li>",
        (
            (f"{row.at:%Y-%m-%d %H:%M:%S}", row.actor, row.via, json.dumps(row.before), json.dumps(row.after))
            for row in rows
        ),
    )
    more = changelist_link(OperatorAction, "all changes of this key →", action=Action.CONFIG_CHANGE, target=key)
    return format_html('<ul class="tds-key-history" style="margin:0 0 .4em;padding:0">{}</ul>{}', lines, more)


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnlyAdmin):
    """The action log: facts, written only by tdscore.actions.record."""

    list_display = ["at", "actor", "via", "action", "target", "before_shown", "after_shown"]
    list_filter = ["action", "via", "actor"]
    search_fields = ["actor", "target"]
    date_hierarchy = "at"
    fields = ["at", "actor", "user", "via", "action", "target", "before_shown", "after_shown"]
    readonly_fields = fields
    raw_id_fields = ["user"]

    before_shown = shown_as(pretty_json, "before", "before")
    after_shown = shown_as(pretty_json, "after", "after")


@admin.register(Metric)
class MetricAdmin(ReadOnlyAdmin):
    list_display = ["name", "value", "labels", "at"]
    list_filter = ["name"]
    date_hierarchy = "at"
