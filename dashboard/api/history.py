"""GET /api/erp/<entity>/<zoho_id>/history: every version of an ERP object, or its state at a time.

Read from the audit trail (sync.history). Stock objects are named as the queue names them:
`adjustment:<id>`, `item:<item_id>`. Who may read it: staff with view permission on the ERP model.
"""

from __future__ import annotations

import re

from django.apps import apps
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api import serializers
from sync import entities, history
from tdscore.permissions import allows

ADMIN_PAGES = {
    "queue": "admin:sync_queueitem_change",
    "inbox": "admin:sync_inboxevent_change",
    "run": "admin:sync_syncrun_change",
}


def erp_model(entity: entities.Entity, zoho_id: str):
    label = (
        entity.snapshot_model
        if entity.snapshot_prefix and zoho_id.startswith(entity.snapshot_prefix)
        else entity.erp_model
    )
    return apps.get_model(label)


class ViewsTheErpModel(permissions.BasePermission):
    """View permission on the entity's ERP model; for an unknown entity, staff (who then get 404)."""

    def has_permission(self, request, view) -> bool:
        entity = entities.ENTITIES.get(view.kwargs["entity"])
        if entity is None:
            return allows(request.user)
        model = erp_model(entity, view.kwargs["zoho_id"])
        return allows(request.user, f"{model._meta.app_label}.view_{model._meta.model_name}")


def _not_found(detail: str) -> Response:
    return Response({"status": "error", "error": "not_found", "detail": detail}, status=status.HTTP_404_NOT_FOUND)


def _link(link: history.Link | None) -> dict | None:
    if link is None:
        return None
    url = reverse(ADMIN_PAGES[link.kind], args=[link.pk]) if link.exists else None
    return {**link.as_dict(), "url": url}


def _version(v: history.Version) -> dict:
    row = v.row
    return {
        "at": row.at,
        "version": row.version,
        "operation": row.operation,
        "changed_fields": row.changed_fields,
        "source": row.source,
        "queue_item_id": row.queue_item_id,
        "inbox_event_id": row.inbox_event_id,
        "run_id": row.run_id,
        "actor": row.actor,
        "before": row.before,
        "after": row.after,
        "links": {"queue_item": _link(v.queue), "inbox_event": _link(v.inbox), "run": _link(v.run)},
    }


class ObjectHistory(APIView):
    """Every version of the object, oldest first; with `as_of`, its state at that time."""

    permission_classes = [ViewsTheErpModel]

    @extend_schema(
        parameters=[
            OpenApiParameter("as_of", str, description="an ISO 8601 time: answer the object's state then instead")
        ],
        responses={
            200: serializers.ObjectHistory,
            400: serializers.Error,
            404: serializers.Error,
        },
    )
    def get(self, request, entity: str, zoho_id: str):
        if entity not in entities.ENTITIES:
            return _not_found(f"no entity {entity!r}")
        as_of = request.query_params.get("as_of")
        at = None
        if as_of is not None:
            # A `+01:00` typed into a browser's address bar arrives as a space.
            at = parse_datetime(re.sub(r" (\d\d:?\d\d)$", r"+\1", as_of.strip()))
            if at is None:
                return Response(
                    {"status": "error", "error": "invalid", "detail": "as_of: not an ISO 8601 time"},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            at = at if timezone.is_aware(at) else timezone.make_aware(at)
        if not history.rows(entity, zoho_id).exists():
            return _not_found(f"no change of {entity} {zoho_id} was ever applied")
        if at is not None:
            state = history.state_as_of(entity, zoho_id, at)
            body = {"entity": entity, "zoho_id": zoho_id, "as_of": at, "state": state}
            return Response(serializers.ObjectState(body).data)
        versions = [_version(v) for v in history.versions(entity, zoho_id)]
        return Response(serializers.ObjectHistory({"entity": entity, "zoho_id": zoho_id, "versions": versions}).data)
