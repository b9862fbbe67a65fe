"""The limiter and the token are shared by every process: threads with their own PostgreSQL
connections stand in for processes (row locks are what makes it work, so PostgreSQL only)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection
from django.utils import timezone

from sync.zoho import limiter
from sync.zoho.client import ZohoClient, ZohoError
from sync.zoho.config_keys import ZOHO_RATE_LIMIT_MAX_WAIT_SECONDS
from sync.zoho.limiter import Slot
from tdscore import config
from tests.conftest import point_at
from zohosim import ZohoSimulator

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 4


def in_threads(work: Callable[[], list]) -> list:
    """Run `work` in THREADS threads started together, each on its own database connection."""
    start = threading.Barrier(THREADS)
    results: list = []
    lock = threading.Lock()

    def run():
        try:
            start.wait()
            found = work()
            with lock:
                results.extend(found)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_acquires_never_grant_more_than_the_minute_cap(settings):
    settings.ZOHO_ORGANIZATION_ID = "60012345"
    now = timezone.now()

    def grab():
        out = []
        for _ in range(40):
            granted = limiter.try_acquire(now, lease_seconds=0)
            out.append("slot" if isinstance(granted, Slot) else "wait")
        return out

    assert Counter(in_threads(grab)) == {"slot": 100, "wait": 60}


def test_clients_in_parallel_stay_within_zohos_minute_limit(settings):
    config.update(ZOHO_RATE_LIMIT_MAX_WAIT_SECONDS, 0)
    with ZohoSimulator(per_minute_limit=100) as sim:
        point_at(settings, sim)
        item = sim.seed("products", 1)[0]

        def call():
            out = []
            with ZohoClient() as zoho:
                for _ in range(40):
                    try:
                        zoho.get("products", item["item_id"])
                        out.append("ok")
                    except ZohoError as exc:
                        out.append(exc.kind)
            return out

        outcomes = Counter(in_threads(call))
        assert outcomes == {"ok": 100, "rate_limit": 60}  # refused here, before Zoho
        assert len(sim.api_calls()) == 100  # so Zoho never answered 429


def test_parallel_clients_refresh_the_token_once(settings):
    with ZohoSimulator(token_mint_limit=10) as sim:
        point_at(settings, sim)
        item = sim.seed("products", 1)[0]

        def call():
            with ZohoClient() as zoho:
                return [zoho.get("products", item["item_id"])["item_id"]]

        assert in_threads(call) == [item["item_id"]] * THREADS
        assert sim.tokens_minted == 1
