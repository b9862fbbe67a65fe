"""Pull runs, cursors and starting a pull: GET /api/dashboard/runs, /cursors; POST /api/dashboard/sync."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api import serializers
from sync import pull, tasks
from sync.models import QueueItem, SyncCursor, SyncRun
from tdscore.permissions import Perm


class RunList(generics.ListAPIView):
    """Pull and reconciliation runs, newest first; filters: entity, status, run_type, trigger."""

    serializer_class = serializers.RunSerializer
    queryset = SyncRun.objects.annotate(
        applied_now=Count("queue_items", filter=Q(queue_items__status=QueueItem.Status.COMPLETED)),
        failed_now=Count("queue_items", filter=Q(queue_items__status=QueueItem.Status.DEAD_LETTER)),
        skipped_now=Count("queue_items", filter=Q(queue_items__status=QueueItem.Status.SKIPPED)),
    ).order_by("-created_at", "-id")
    filterset_fields = ["entity", "status", "run_type", "trigger"]
    needs = {"GET": (Perm.VIEW_SYNCRUN,)}


class CursorList(generics.ListAPIView):
    serializer_class = serializers.CursorSerializer
    queryset = SyncCursor.objects.order_by("entity", "run_type")
    filterset_fields = ["entity", "run_type"]
    needs = {"GET": (Perm.VIEW_SYNCCURSOR,)}


class StartSync(APIView):
    """Start pull runs; they execute in the cluster. 202 with the run ids, 409 with the reasons."""

    needs = {"POST": (Perm.START_RUN,)}

    @extend_schema(
        request=serializers.SyncRequest,
        responses={202: serializers.SyncAccepted, 409: serializers.SyncRefused},
    )
    def post(self, request):
        ask = serializers.SyncRequest(data=request.data)
        if not ask.is_valid():
            return Response(
                {"status": "error", "error": "invalid", "detail": ask.errors}, status=status.HTTP_400_BAD_REQUEST
            )
        slugs = pull.slugs_for(ask.validated_data["entity"], ask.validated_data["mode"])
        with transaction.atomic():
            started, refused = pull.start_runs(slugs, ask.validated_data["mode"], now=timezone.now(), trigger="api")
            tasks.launch_runs(started)
        pending = [run.pk for run in started if run.status == SyncRun.Status.PENDING]
        for run in started:
            if run.status == SyncRun.Status.DEFERRED:
                refused[run.entity] = f"deferred (run #{run.pk}): {run.error}"
        if not pending:
            return Response(
                {"status": "error", "error": "refused", "detail": "; ".join(refused.values()), "refused": refused},
                status=status.HTTP_409_CONFLICT,
            )
        return Response({"run_ids": pending, "refused": refused}, status=status.HTTP_202_ACCEPTED)
