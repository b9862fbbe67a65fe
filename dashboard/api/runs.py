"""Pull runs, cursors and starting a pull: GET /api/dashboard/runs, /cursors; POST /api/dashboard/sync.

`start_sync` is the one way an operator starts runs: the API's POST and the dashboard's buttons both
call it, so both refuse the same runs with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from tdscore.actions import Actor, Via
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


@dataclass
class Started:
    """What starting asked-for runs did: the runs now pending, and why each other entity was not started."""

    run_ids: list[int] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def start_sync(entity: str, mode: str, *, trigger: str, actor: Actor) -> Started:
    """Start a run of `mode` (full, incremental or reconciliation) for an entity or `all`, executed in
    the cluster once this commits. A run the budget defers is a refusal here: nothing runs now."""
    slugs = pull.slugs_for(entity, mode)
    with transaction.atomic():
        started, refused = pull.start_runs(slugs, mode, now=timezone.now(), trigger=trigger, actor=actor)
        tasks.launch_runs(started)
    outcome = Started(refused=refused)
    for run in started:
        if run.status == SyncRun.Status.PENDING:
            outcome.run_ids.append(run.pk)
        elif run.status == SyncRun.Status.DEFERRED:
            outcome.refused[run.entity] = f"deferred (run #{run.pk}): {run.error}"
    return outcome


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
        outcome = start_sync(
            ask.validated_data["entity"],
            ask.validated_data["mode"],
            trigger="api",
            actor=Actor.of_request(request, Via.API),
        )
        if not outcome.run_ids:
            refused = outcome.refused
            return Response(
                {"status": "error", "error": "refused", "detail": "; ".join(refused.values()), "refused": refused},
                status=status.HTTP_409_CONFLICT,
            )
        return Response({"run_ids": outcome.run_ids, "refused": outcome.refused}, status=status.HTTP_202_ACCEPTED)
