"""A version the database cannot hold never becomes a queue row's version, on any path: the webhook
dead-letters it (test_hostile_content.py); a pulled row is queued without it, so
claiming its batch cannot fail."""

from __future__ import annotations

import pytest
from django.utils import timezone

from sync import queue
from sync.models import QueueItem
from sync.payloads import parse_zoho_time, version_of

pytestmark = pytest.mark.django_db

OUT_OF_RANGE = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:30:00+00:00"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_a_time_outside_the_range_in_utc_is_no_version(value):
    assert parse_zoho_time(value) is None
    assert version_of({"last_modified_time": value}) is None


def test_a_pulled_row_with_a_version_out_of_range_is_queued_without_it_and_claimed():
    now = timezone.now()
    rows = [
        QueueItem(entity="products", object_id=str(n), payload={"item_id": str(n), "last_modified_time": value})
        for n, value in enumerate(OUT_OF_RANGE)
    ]
    for row in rows:
        row.version, row.source = version_of(row.payload), QueueItem.Source.PULL
    queue.enqueue_many(rows, now=now)
    batch = queue.claim_batch(worker_id="test", now=now)
    assert [item.version for item in batch.items] == [None, None, None]
