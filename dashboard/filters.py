"""django-filter FilterSets of the dashboard API's lists (SPEC §5)."""

from __future__ import annotations

from django_filters import rest_framework as filters

from sync.models import DeadLetter, QueueItem


class RecentEventFilter(filters.FilterSet):
    entity = filters.CharFilter(help_text="entity slug, e.g. products")
    status = filters.ChoiceFilter(choices=QueueItem.Status.choices)
    source = filters.ChoiceFilter(choices=QueueItem.Source.choices)
    object_id = filters.CharFilter(help_text="the Zoho id (stock: adjustment:<id> or item:<id>)")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

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
