"""GET /api/dashboard/metrics, /queue-stats and /recent-events: the console's figures and recent rows."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api import serializers
from dashboard.api.filters import RecentEventFilter
from monitoring import stats
from monitoring.rollups import Series
from sync.models import QueueItem
from tdscore.permissions import Perm

# Hourly: read from the hourly roll-ups, 24 points a series however busy the day was.
THROUGHPUT_STEP = timedelta(hours=1)


class Metrics(APIView):
    """The console's headline figures; 24-hour throughput per hour from the roll-ups."""

    needs = {"GET": (Perm.VIEW_QUEUEITEM,)}

    @extend_schema(responses={200: serializers.Overview})
    def get(self, request):
        now = timezone.now()
        since = now - stats.DAY
        body = stats.overview(now)
        names = {"received": Series.RECEIVED_HOURLY, "applied": Series.APPLIED_HOURLY, "failed": Series.FAILED_HOURLY}
        found = stats.many_series(list(names.values()), since, now, step=THROUGHPUT_STEP)
        body["throughput"] = {
            "step_seconds": int(THROUGHPUT_STEP.total_seconds()),
            **{key: found[name] for key, name in names.items()},
        }
        return Response(serializers.Overview(body).data)


class QueueStats(APIView):
    """Queue rows by status and by entity, the depth and the oldest pending age."""

    needs = {"GET": (Perm.VIEW_QUEUEITEM,)}

    @extend_schema(responses={200: serializers.QueueStats})
    def get(self, request):
        return Response(serializers.QueueStats(stats.queue_stats(timezone.now())).data)


class RecentEvents(generics.ListAPIView):
    """Queue rows, newest first, each with the inbox row (webhook) it came from, if any."""

    serializer_class = serializers.RecentEvent
    # The raw body (up to a megabyte) is the admin's to show; a page of fifty needs only the fields.
    queryset = QueueItem.objects.select_related("inbox_event").defer("inbox_event__raw_body").order_by("-id")
    filterset_class = RecentEventFilter
    needs = {"GET": (Perm.VIEW_QUEUEITEM, Perm.VIEW_INBOXEVENT)}
