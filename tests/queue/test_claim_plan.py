"""A claim leases one batch, whatever the planner last learnt about the queue (PostgreSQL).

After a quiet spell ANALYZE counts no waiting rows; a burst then arrives before the next one. The
claim once let the planner re-run its row pick for every waiting row in that case and lease the
whole backlog in one statement: a drainer took every row (other drainers starved) and the claim's
cost grew with the square of the backlog (13 s for 5,000 rows over 1,000,000 finished ones).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from sync import queue
from sync.config_keys import BATCH_SIZE
from sync.models import QueueItem
from tdscore import config
from tests.factories import product_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def rows(count: int, status: str, prefix: str) -> None:
    now = timezone.now()
    QueueItem.objects.bulk_create(
        [
            QueueItem(
                entity="products",
                object_id=f"{prefix}{n}",
                content_hash=f"{n:064x}",
                payload=product_payload(f"{prefix}{n}"),
                source=QueueItem.Source.WEBHOOK,
                status=status,
                next_attempt_at=now,
                finished_at=now if status == QueueItem.Status.COMPLETED else None,
            )
            for n in range(count)
        ],
        batch_size=1000,
    )


def test_a_burst_after_a_quiet_analyze_is_claimed_one_batch_at_a_time():
    config.update(BATCH_SIZE, 50)
    rows(3000, QueueItem.Status.COMPLETED, "old-")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tds_sync_queue")  # a quiet queue: nothing waiting
    rows(400, QueueItem.Status.PENDING, "burst-")

    batch = queue.claim_batch(worker_id="drainer-1", now=timezone.now())

    assert len(batch.items) == 50
    assert QueueItem.objects.filter(status=QueueItem.Status.PROCESSING).count() == 50
    second = queue.claim_batch(worker_id="drainer-2", now=timezone.now())
    assert len(second.items) == 50 and {i.pk for i in second.items}.isdisjoint(i.pk for i in batch.items)
