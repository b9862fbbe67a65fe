"""GET /api/dashboard/actions: the operator action log (tds_operator_actions), newest first.

Filters: actor, action, since. A filter value the log cannot be read by (a time that is not ISO
8601, an unknown action) is a 400 in the API's error body, naming the filter.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from dashboard.api import serializers
from dashboard.api.filters import OperatorActionFilter
from tdscore.models import OperatorAction
from tdscore.permissions import Perm


class ActionList(generics.ListAPIView):
    """Who did what, when and through which door (admin, api, dashboard, command)."""

    serializer_class = serializers.OperatorActionRow
    queryset = OperatorAction.objects.order_by("-at", "-id")
    needs = {"GET": (Perm.VIEW_OPERATORACTION,)}
    # Declared for the schema; applied in get(), since the backend's refusal is a bare {field: [messages]}.
    filterset_class = OperatorActionFilter

    @extend_schema(responses={200: serializers.OperatorActionRow(many=True), 400: serializers.Error})
    def get(self, request, *args, **kwargs):
        wanted = OperatorActionFilter(request.query_params, queryset=self.get_queryset(), request=request)
        if not wanted.is_valid():
            name, problems = next(iter(wanted.errors.items()))
            return Response(
                {"status": "error", "error": "invalid_filter", "detail": f"{name}: {problems[0]}"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        page = self.paginate_queryset(wanted.qs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
