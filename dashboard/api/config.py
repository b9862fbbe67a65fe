"""GET, PATCH /api/dashboard/config: the runtime configuration rows.

Reading needs `tdscore.view_configuration`, changing `tdscore.change_configuration` (as in the admin);
a change is validated key by key and stored all or nothing through tdscore.config.update_many, the
function the admin and the commands use.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from dashboard.api import serializers
from tdscore import config
from tdscore.actions import Actor, Via
from tdscore.models import Configuration
from tdscore.permissions import Perm


def _invalid(key: str | None, detail: str) -> Response:
    return Response(
        {"status": "error", "error": "invalid_config", "detail": detail, "key": key}, status=status.HTTP_400_BAD_REQUEST
    )


class ConfigRows(generics.ListAPIView):
    """Every configuration key with its value, type, range and default."""

    serializer_class = serializers.ConfigRow
    queryset = Configuration.objects.select_related("updated_by").order_by("category", "key")
    needs = {"GET": (Perm.VIEW_CONFIGURATION,), "PATCH": (Perm.CHANGE_CONFIGURATION,)}
    filterset_fields = ["category"]

    @extend_schema(
        request={"application/json": {"type": "object", "additionalProperties": True}},
        responses={200: serializers.ConfigUpdated, 400: serializers.ConfigError, 403: serializers.Error},
        examples=[OpenApiExample("two keys", value={"batch_size": 200, "paused_entities": ["invoices"]})],
    )
    def patch(self, request):
        """Change several keys at once (`tdscore.change_configuration`): all are stored, or none."""
        values = request.data
        if not isinstance(values, dict) or not values:
            return _invalid(None, "send a JSON object of {key: value, …} with at least one key")
        for name, value in values.items():
            key = config.REGISTRY.get(name)
            if key is None:
                return _invalid(name, f"unknown configuration key {name!r}")
            try:
                key.validate(value)
            except config.ConfigError as exc:
                return _invalid(name, str(exc))
        # Validated above key by key (to name the culprit); update_many checks again and stores all at once.
        return Response({"updated": config.update_many(values, actor=Actor.of_request(request, Via.API))})
