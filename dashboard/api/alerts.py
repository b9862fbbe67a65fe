"""Alerts in the API: GET /api/dashboard/alerts; POST …/<id>/acknowledge, …/resolve."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import Alert, AlertStateError
from dashboard.api import serializers
from tdscore.actions import Actor, Via
from tdscore.permissions import Perm


class AlertList(generics.ListAPIView):
    """Alerts, most recently seen first; filters: status, severity, rule."""

    serializer_class = serializers.AlertSerializer
    queryset = Alert.objects.order_by("-last_seen", "-id")
    needs = {"GET": (Perm.VIEW_ALERT,)}
    filterset_fields = ["status", "severity", "rule"]


class _Move(APIView):
    verb = ""
    needs = {"POST": (Perm.ACKNOWLEDGE_ALERT,)}

    @extend_schema(
        request=None,
        responses={
            200: serializers.AlertSerializer,
            404: serializers.AlertActionErrorSerializer,
            409: serializers.AlertActionErrorSerializer,
        },
    )
    def post(self, request, pk: int):
        alert = Alert.objects.filter(pk=pk).first()
        if alert is None:
            return Response(
                {"status": "error", "error": "not_found", "detail": f"no alert {pk}"}, status=status.HTTP_404_NOT_FOUND
            )
        try:
            getattr(alert, self.verb)(actor=Actor.of_request(request, Via.API), now=timezone.now())
        except AlertStateError as exc:
            return Response(
                {"status": "error", "error": "conflict", "detail": str(exc)}, status=status.HTTP_409_CONFLICT
            )
        return Response(serializers.AlertSerializer(alert).data)


class AcknowledgeAlert(_Move):
    """Acknowledge an open alert, recording who and when (stops its escalation); 409 if not open."""

    verb = "acknowledge"


class ResolveAlert(_Move):
    """Resolve an open or acknowledged alert, recording who and when; 409 if already resolved."""

    verb = "resolve"
