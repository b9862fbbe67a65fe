from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.utils import timezone

from sync.models import QueueItem
from tests import factories

NOW = datetime(2026, 11, 20, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def finished_row(
    entity: str = "products",
    object_id: str = "1001",
    *,
    status: str = QueueItem.Status.COMPLETED,
    received: datetime,
    finished: datetime,
    version: datetime | None = None,
) -> QueueItem:
    """A webhook's queue row (with its inbox row) that reached `status` at `finished`."""
    event = factories.inbox_event(entity, object_id=object_id, received_at=received)
    item = factories.queue_item(entity, object_id, inbox_event=event, now=received, version=version or received)
    QueueItem.objects.filter(pk=item.pk).update(status=status, finished_at=finished, updated_at=finished)
    item.refresh_from_db()
    return item


def dead_lettered(entity: str = "products", object_id: str = "1001", *, at: datetime | None = None, **fields):
    """A queue row that failed for good and its open dead letter, as the worker leaves them."""
    at = at or timezone.now()
    item = finished_row(entity, object_id, status=QueueItem.Status.DEAD_LETTER, received=at, finished=at)
    return factories.dead_letter(queue_item=item, first_failed_at=at, last_failed_at=at, **fields)
