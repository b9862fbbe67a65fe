"""Customers and vendors are one Zoho object, a contact, filed by its `contact_type`.

A contact filed as a vendor after being a customer (or the reverse) leaves the other table: when a
change of a contact whose `contact_type` names this handler's entity is applied, the live row of
the same contact in the other table is tombstoned, with an audit row, in the same transaction. Its
version is raised to the change's, so a late change of the old type, older than the move, stays
out (a tombstone revives only for a strictly newer version), and a newer one moves it back.
Both handlers lock a contact under the same name (Handler.lock_namespace), so two batches moving
one contact either way take turns instead of deadlocking.
"""

from __future__ import annotations

from datetime import datetime

from django.apps import apps

from sync import entities
from sync.handlers.apply import Columns, Handler
from sync.handlers.decisions import ApplyOutcome, Change, highest, jsonable
from sync.models import AuditTrail


class ContactHandler(Handler):
    def __init__(self, *args, leaves: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.other = entities.get(leaves)
        self.other_model = apps.get_model(self.other.erp_model)
        self.other_columns = Columns(self.other_model, {})

    def after_apply(self, changes: list[Change], outcomes: dict[int, ApplyOutcome], now: datetime) -> list[AuditTrail]:
        moved = {
            change.zoho_id: change
            for change in changes
            if outcomes[change.item.pk] == ApplyOutcome.APPLIED
            and not change.delete
            and str(change.obj.get("contact_type", "")).lower() == self.entity.contact_type
        }
        if not moved:
            return []
        left = list(
            self.other_model.objects.select_for_update()
            .filter(zoho_id__in=moved, deleted_at__isnull=True)
            .order_by("zoho_id")
        )
        audits = []
        for row in left:
            change = moved[row.zoho_id]
            before = {name: getattr(row, name) for name in self.other_columns.names} | {"deleted_at": None}
            row.deleted_at = row.synced_at = now
            row.zoho_last_modified = highest(row.zoho_last_modified, change.version)
            audits.append(
                AuditTrail(
                    entity=self.other.slug,
                    object_id=row.zoho_id,
                    operation=AuditTrail.Operation.DELETE,
                    before=jsonable(before),
                    after=jsonable({**before, "deleted_at": now}),
                    changed_fields=["deleted_at"],
                    version=change.version,
                    source=change.item.source,
                    queue_item_id=change.item.pk,
                    inbox_event_id=change.item.inbox_event_id,
                    run_id=change.item.sync_run_id,
                    actor=change.item.requested_by,
                    at=now,
                )
            )
        self.other_model.objects.bulk_update(left, ["deleted_at", "synced_at", "zoho_last_modified"])
        return audits
