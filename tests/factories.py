"""Plain builders with overridable defaults (CONVENTIONS "Tests")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from sync import queue
from sync.models import InboxEvent, QueueItem
from sync.payloads import content_hash


def product_payload(item_id: str = "1001", **fields: Any) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "name": f"Widget {item_id}",
        "sku": f"W-{item_id}",
        "rate": 10.5,
        "status": "active",
        "last_modified_time": "2026-11-01T10:00:00+0000",
        **fields,
    }


def inbox_event(entity: str = "products", **fields: Any) -> InboxEvent:
    defaults = {
        "entity": entity,
        "source": InboxEvent.Source.TOKEN,
        "method": "POST",
        "raw_body": b"{}",
        "idempotency_key": f"test:{InboxEvent.objects.count()}:{timezone.now().timestamp()}",
        "content_hash": "0" * 64,
    }
    return InboxEvent.objects.create(**{**defaults, **fields})


def queue_item(
    entity: str = "products",
    object_id: str = "1001",
    *,
    payload: dict[str, Any] | None = None,
    version: datetime | None = datetime(2026, 11, 1, 10, tzinfo=UTC),
    now: datetime | None = None,
    **fields: Any,
) -> QueueItem:
    """A pending queue row made the way the webhook view and pulls make them (`queue.enqueue`)."""
    payload = payload if payload is not None else product_payload(object_id)
    return queue.enqueue(
        entity=entity,
        object_id=object_id,
        payload=payload,
        content_hash=content_hash(payload),
        version=version,
        source=fields.pop("source", QueueItem.Source.WEBHOOK),
        now=now or timezone.now(),
        **fields,
    )
