"""Pull tests run against the Zoho simulator over real HTTP, with small pages so a few hundred
records cross many pages. Waits (the minute limit, a 429's pause) move the clock instead of
sleeping: `clock(seconds)` is the sleep given to the client and the run."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from sync import pull, worker
from sync.zoho.client import ZohoClient

PAGE = 20


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=True) as traveller:
        yield lambda seconds: traveller.shift(timedelta(seconds=seconds))


@pytest.fixture
def sim(clock, zoho_sim, settings):
    settings.TDS_PULL_PAGE_SIZE = PAGE
    settings.ZOHO_PLAN = "premium"  # 10,000 calls a day: tests about the budget set their own
    return zoho_sim


@pytest.fixture
def run_pull(sim, clock):
    def run(slug: str, mode: str, **options):
        client = ZohoClient(sleep=clock)
        return pull.pull_entity(slug, mode, now=timezone.now(), client=client, sleep=clock, **options)

    return run


def drain() -> None:
    worker.drain(None, worker_id="test-drainer", once=True)


def list_calls(sim, path_end: str) -> list:
    return [r for r in sim.api_calls() if r.method == "GET" and r.path.endswith(path_end)]
