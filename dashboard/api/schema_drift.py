"""Schema drift in the API: GET /api/dashboard/schema-drift; POST …/schema-drift/<id>/acknowledge."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.serializers import Error
from sync import schema_drift
from sync.models import SchemaDrift
from tdscore.actions import Actor, Via
from tdscore.permissions import Perm


class DriftRow(serializers.ModelSerializer):
    acknowledged = serializers.SerializerMethodField()

    class Meta:
        model = SchemaDrift
        fields = [
            "id",
            "entity",
            "path",
            "first_seen",
            "last_seen",
            "count",
            "example_object_id",
            "acknowledged",
            "acknowledged_at",
            "acknowledged_by",
        ]

    def get_acknowledged(self, row: SchemaDrift) -> bool:
        return row.acknowledged_at is not None


class DriftFilter(filters.FilterSet):
    entity = filters.CharFilter(help_text="entity slug, e.g. invoices")
    acknowledged = filters.BooleanFilter(field_name="acknowledged_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = SchemaDrift
        fields = ["entity", "acknowledged"]


class DriftList(generics.ListAPIView):
    """Fields Zoho sends that the mapping does not read, newest sighting first."""

    serializer_class = DriftRow
    queryset = SchemaDrift.objects.order_by("-last_seen", "entity", "path")
    filterset_class = DriftFilter
    needs = {"GET": (Perm.VIEW_SCHEMADRIFT,)}


class AcknowledgeDrift(APIView):
    """Mark a drift row seen (recorded in the action log); 409 if it already was."""

    needs = {"POST": (Perm.ACKNOWLEDGE_DRIFT,)}

    @extend_schema(request=None, responses={200: DriftRow, 409: Error})
    def post(self, request, pk: int):
        row = get_object_or_404(SchemaDrift, pk=pk)
        try:
            row = schema_drift.acknowledge(row, actor=Actor.of_request(request, Via.API), now=timezone.now())
        except schema_drift.AlreadyAcknowledged as exc:
            return Response(
                {"status": "error", "error": "already_acknowledged", "detail": str(exc)},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(DriftRow(row).data)
