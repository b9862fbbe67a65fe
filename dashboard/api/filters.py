"""django-filter FilterSets of the API's lists of queue rows and dead letters."""

from __future__ import annotations

from datetime import UTC

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from sync.models import DeadLetter, QueueItem
from tdscore.enums import Action
from tdscore.models import OperatorAction


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, turned to UTC: PostgreSQL refuses offsets past ±15:59, which Python allows
    (a 500 schemathesis found), and an instant too near year 1 or 9999 to exist in UTC is a 400."""

    def clean(self, value):
        value = super().clean(value)
        if value is None:
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("this time is out of range") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class RecentEventFilter(filters.FilterSet):
    entity = filters.CharFilter(help_text="entity slug, e.g. products")
    status = filters.ChoiceFilter(choices=QueueItem.Status.choices)
    source = filters.ChoiceFilter(choices=QueueItem.Source.choices)
    object_id = filters.CharFilter(help_text="the Zoho id (stock: adjustment:<id> or item:<id>)")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = QueueItem
        fields = ["entity", "status", "source", "object_id", "created_after", "created_before"]


class DeadLetterFilter(filters.FilterSet):
    # A free slug, not a choice: an `unknown_entity` dead letter carries the slug that came in.
    entity = filters.CharFilter()
    reason = filters.ChoiceFilter(choices=DeadLetter.Reason.choices)
    resolved = filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = DeadLetter
        fields = ["entity", "reason", "resolved"]


class OperatorActionFilter(filters.FilterSet):
    actor = filters.CharFilter(help_text="who, as logged: a username, `alice (token)`, or `user@host` for a command")
    action = filters.ChoiceFilter(choices=[(action.value, action.value) for action in Action])
    since = UtcDateTimeFilter(field_name="at", lookup_expr="gte", help_text="ISO 8601 time: actions at or after it")

    class Meta:
        model = OperatorAction
        fields = ["actor", "action", "since"]
