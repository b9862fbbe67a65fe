"""Pull runs, cursors and starting a pull: GET /api/dashboard/runs, /cursors; POST /api/dashboard/sync."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from sync import entities, pull, tasks
from sync.models import QueueItem, SyncCursor, SyncRun


class RunSerializer(serializers.ModelSerializer):
    # What became of the run's queue rows so far, counted when read: the drainers finish them later.
    applied = serializers.IntegerField(source="applied_now", read_only=True)
    failed = serializers.IntegerField(source="failed_now", read_only=True)
    skipped = serializers.IntegerField(source="skipped_now", read_only=True)

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "run_type",
            "entity",
            "status",
            "trigger",
            "created_at",
            "started_at",
            "finished_at",
            "duration",
            "estimated_calls",
            "calls",
            "fetched",
            "queued",
            "applied",
            "failed",
            "skipped",
            "checkpoint",
            "error",
            "drift_report",
            "heartbeat_at",
        ]


class CursorSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncCursor
        fields = ["id", "entity", "run_type", "watermark", "checkpoint", "last_run", "last_run_at", "last_success_at"]


class RunList(generics.ListAPIView):
    """Pull and reconciliation runs, newest first; filters: entity, status, run_type, trigger."""

    serializer_class = RunSerializer
    queryset = SyncRun.objects.annotate(
        applied_now=Count("queue_items", filter=Q(queue_items__status=QueueItem.Status.COMPLETED)),
        failed_now=Count("queue_items", filter=Q(queue_items__status=QueueItem.Status.DEAD_LETTER)),
        skipped_now=Count("queue_items", filter=Q(queue_items__status=QueueItem.Status.SKIPPED)),
    ).order_by("-created_at", "-id")
    filterset_fields = ["entity", "status", "run_type", "trigger"]


class CursorList(generics.ListAPIView):
    serializer_class = CursorSerializer
    queryset = SyncCursor.objects.order_by("entity", "run_type")
    filterset_fields = ["entity", "run_type"]


class SyncRequest(serializers.Serializer):
    entity = serializers.ChoiceField(choices=["all", *entities.ENTITIES])
    mode = serializers.ChoiceField(choices=["full", "incremental"], default="incremental")


class SyncAccepted(serializers.Serializer):
    run_ids = serializers.ListField(child=serializers.IntegerField())
    refused = serializers.DictField(child=serializers.CharField(), help_text="entity → why it was not started")


class SyncRefused(serializers.Serializer):
    status = serializers.CharField()
    error = serializers.CharField()
    detail = serializers.CharField()
    refused = serializers.DictField(child=serializers.CharField())


class StartSync(APIView):
    """Start pull runs; they execute in the cluster. 202 with the run ids, 409 with the reasons."""

    @extend_schema(request=SyncRequest, responses={202: SyncAccepted, 409: SyncRefused})
    def post(self, request):
        ask = SyncRequest(data=request.data)
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
