"""The dead-letter queue by API: list or group, retry, discard, bulk retry.

Every change goes through sync.queue's replay/discard, the functions the admin actions and
`replay_dlq` call, so a dead letter resolved here is resolved exactly as the CLI would.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Max, Min
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api import serializers
from dashboard.api.filters import DeadLetterFilter
from sync import queue, replay_preview
from sync.models import DeadLetter
from tdscore.actions import Actor, Via
from tdscore.permissions import Perm

GROUP = OpenApiParameter(
    "group",
    OpenApiTypes.BOOL,
    description="1: one row per entity + reason + error class, with counts, first/last seen and a sample",
)


# Rows, or with ?group=1 groups: one list answer whose items are either (the schema says so).
ROW_OR_GROUP = PolymorphicProxySerializer(
    component_name="DeadLetterRowOrGroup",
    serializers=[serializers.DeadLetterRow, serializers.DeadLetterGroup],
    resource_type_field_name=None,
    many=True,
)


def _refused(exc: queue.DeadLetterError) -> Response:
    code = "already_resolved" if isinstance(exc, queue.AlreadyResolved) else "not_replayable"
    return Response({"status": "error", "error": code, "detail": str(exc)}, status=status.HTTP_409_CONFLICT)


def _grouped(rows):
    """Groups in the newest-failure order, each with its newest dead letter as the sample."""
    return (
        rows.values("entity", "reason", "error_class")
        .annotate(
            count=Count("id"), first_seen=Min("first_failed_at"), last_seen=Max("last_failed_at"), sample_id=Max("id")
        )
        .order_by("-last_seen", "entity", "reason", "error_class")
    )


def _with_samples(groups: list[dict]) -> list[dict]:
    samples = DeadLetter.objects.filter(pk__in=[g["sample_id"] for g in groups]).only(
        "object_id", "error", "last_failed_at"
    )
    by_id = {row.pk: row for row in samples}
    for group in groups:
        sample = by_id[group.pop("sample_id")]
        group["sample"] = {
            "id": sample.pk,
            "object_id": sample.object_id,
            "error": sample.error,
            "last_failed_at": sample.last_failed_at,
        }
    return groups


class DeadLetterList(generics.ListAPIView):
    """Dead letters, newest failure first; `?group=1` for groups instead of rows."""

    serializer_class = serializers.DeadLetterRow
    queryset = DeadLetter.objects.order_by("-last_failed_at", "-id")
    filterset_class = DeadLetterFilter
    needs = {"GET": (Perm.VIEW_DEADLETTER,)}

    @extend_schema(parameters=[GROUP], responses={200: ROW_OR_GROUP})
    def get(self, request, *args, **kwargs):
        if request.query_params.get("group") not in ("1", "true", "True"):
            return super().get(request, *args, **kwargs)
        # Groups are few (entities x reasons x error classes): one GROUP BY, paged in memory,
        # rather than the paginator's COUNT doing the whole grouping a second time.
        page = self.paginate_queryset(list(_grouped(self.filter_queryset(self.get_queryset()))))
        return self.get_paginated_response(serializers.DeadLetterGroup(_with_samples(list(page)), many=True).data)


class Retry(APIView):
    """Send the dead letter's queue row back to pending (attempts reset); 409 if it cannot be."""

    needs = {"POST": (Perm.REPLAY_DEADLETTER,)}

    @extend_schema(request=None, responses={202: serializers.Retried, 409: serializers.Error})
    def post(self, request, pk: int):
        dead_letter = get_object_or_404(DeadLetter, pk=pk)
        try:
            item = queue.replay(dead_letter, actor=Actor.of_request(request, Via.API), now=timezone.now())
        except queue.DeadLetterError as exc:
            return _refused(exc)
        dead_letter.refresh_from_db()
        body = {
            "dead_letter": serializers.DeadLetterRow(dead_letter).data,
            "queue_item": item.pk,
            "status": item.status,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class Discard(APIView):
    """Resolve the dead letter without applying it; 409 if already resolved."""

    needs = {"POST": (Perm.DISCARD_DEADLETTER,)}

    @extend_schema(request=None, responses={200: serializers.DeadLetterRow, 409: serializers.Error})
    def post(self, request, pk: int):
        dead_letter = get_object_or_404(DeadLetter, pk=pk)
        try:
            queue.discard(dead_letter, actor=Actor.of_request(request, Via.API), now=timezone.now())
        except queue.DeadLetterError as exc:
            return _refused(exc)
        dead_letter.refresh_from_db()
        return Response(serializers.DeadLetterRow(dead_letter).data)


class BulkRetry(APIView):
    """Replay every unresolved dead letter the filters match; with no filter, `all` must be true.
    With `dry_run`, answer what each replay would do to the ERP row, and write nothing."""

    # A preview needs what the replay needs: it shows what only a replayer could set off.
    needs = {"POST": (Perm.REPLAY_DEADLETTER,)}

    @extend_schema(
        operation_id="dashboard_dead_letter_bulk_retry",
        request=serializers.BulkRetryRequest,
        responses={202: serializers.BulkRetried, 200: serializers.BulkRetryPreviewed, 400: serializers.Error},
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            return Response(
                {"status": "error", "error": "invalid", "detail": "the body must be a JSON object"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        ask = serializers.BulkRetryRequest(data={**request.query_params.dict(), **request.data})
        if not ask.is_valid():
            return Response(
                {"status": "error", "error": "invalid", "detail": _first_error(ask.errors)},
                status=status.HTTP_400_BAD_REQUEST,
            )
        wanted = {name: ask.validated_data[name] for name in ("entity", "reason") if name in ask.validated_data}
        if not wanted and not ask.validated_data["all"]:
            return Response(
                {"status": "error", "error": "filter_required", "detail": "give entity or reason, or all=true"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        matching = DeadLetter.objects.unresolved().filter(**wanted)
        if ask.validated_data["dry_run"]:
            previews = replay_preview.preview(matching, now=timezone.now())
            return Response({"count": len(previews), "previews": [p.as_dict() for p in previews]})
        replayed, refused = replay_matching(matching, actor=Actor.of_request(request, Via.API))
        return Response({"count": replayed, "not_replayed": refused}, status=status.HTTP_202_ACCEPTED)


def replay_matching(rows, *, actor: Actor) -> tuple[int, int]:
    """Replay each row on its own, as `replay_dlq` does: one that is refused does not stop the rest."""
    replayed = refused = 0
    now = timezone.now()
    for dead_letter in rows.order_by("pk").only("pk").iterator():
        try:
            with transaction.atomic():
                queue.replay(dead_letter, actor=actor, now=now)
        except queue.DeadLetterError:
            refused += 1
        else:
            replayed += 1
    return replayed, refused


def _first_error(errors: dict) -> str:
    field, problems = next(iter(errors.items()))
    return f"{field}: {problems[0]}"
