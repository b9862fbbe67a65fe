"""Identical deliveries racing each other on PostgreSQL: the unique key decides, not the code."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from sync.models import InboxEvent, QueueItem
from tests.webhooks.conftest import deliver

ITEM = {"item_id": "42", "name": "Widget", "last_modified_time": "2026-06-09T09:45:41-0400"}
THREADS = 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_deliveries_make_one_row():
    start = threading.Barrier(THREADS)
    answers: list[int] = []
    lock = threading.Lock()

    def send():
        try:
            start.wait(timeout=10)
            status = deliver(Client(), "products", ITEM).status_code
            with lock:
                answers.append(status)
        finally:
            connection.close()  # each thread opened its own connection

    threads = [threading.Thread(target=send) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers) == [200] * (THREADS - 1) + [202]
    event = InboxEvent.objects.get()
    assert event.duplicate_count == THREADS - 1
    assert QueueItem.objects.count() == 1
