"""The auth-failure throttle is one count for every process: the 429 comes at the
configured limit with two gunicorn workers, in the database or in Redis; with the database down
each process still throttles on its own, fast."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine

from sync.config_keys import WEBHOOK_AUTH_FAILURE_LIMIT, WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS
from sync.models import WebhookAuthFailures
from tdscore import config
from tests.webhooks.conftest import deliver
from tests.webhooks.servers import migrated_sqlite, raw_request, running, url_of_test_database, webhook_head

LIMIT = 20  # the default of webhook_auth_failure_limit
BODY = json.dumps({"item_id": "42"}).encode()
REDIS_URL = "redis://127.0.0.1:6379/14"
REDIS_KEY = ":1:tds:webhook-auth-failures:127.0.0.1"  # Django's RedisCache prefix and version


def failures(port: int, count: int) -> list[int]:
    # A connection per request, so gunicorn's workers take them in turn as each is free.
    head = webhook_head("/webhooks/products?token=wrong", f"Content-Length: {len(BODY)}")
    return [raw_request(port, head, BODY)[0] for _ in range(count)]


@pytest.fixture
def database_url(tmp_path):
    from django.db import connection

    return url_of_test_database() if connection.vendor == "postgresql" else migrated_sqlite(tmp_path)


@pytest.mark.django_db(transaction=True)
def test_failures_are_one_count_for_two_gunicorn_workers_in_the_database(database_url, tmp_path):
    with running("gunicorn", database_url, tmp_path / "server.log", workers=2) as port:
        answers = failures(port, LIMIT + 10)
    assert answers == [401] * LIMIT + [429] * 10


@pytest.mark.django_db(transaction=True)
def test_failures_are_one_count_for_two_gunicorn_workers_in_redis(database_url, tmp_path):
    redis.Redis.from_url(REDIS_URL).delete(REDIS_KEY)
    try:
        with running("gunicorn", database_url, tmp_path / "server.log", workers=2, REDIS_URL=REDIS_URL) as port:
            answers = failures(port, LIMIT + 10)
    finally:
        redis.Redis.from_url(REDIS_URL).delete(REDIS_KEY)
    assert answers == [401] * LIMIT + [429] * 10


def test_with_the_database_down_each_process_still_throttles_fast(tmp_path):
    # A request waits up to TDS_DB_POOL_TIMEOUT for a connection the pool cannot make; the throttle
    # then stops asking the database for a while, so only the first refusal pays that wait.
    down = "postgres://postgres@127.0.0.1:1/down"
    with running("gunicorn", down, tmp_path / "server.log", TDS_DB_POOL_TIMEOUT="1") as port:
        started = time.monotonic()
        answers = failures(port, LIMIT + 5)
        elapsed = time.monotonic() - started
    assert answers == [401] * LIMIT + [429] * 5
    assert elapsed < 10, f"{LIMIT + 5} refusals took {elapsed:.1f} s"


@pytest.mark.django_db
def test_the_count_is_kept_in_its_table(client):
    config.update(WEBHOOK_AUTH_FAILURE_LIMIT, 2)
    for _ in range(3):
        deliver(client, "products", {"item_id": "42"}, auth=False)
    assert WebhookAuthFailures.objects.get(address="127.0.0.1").failures == 3


@pytest.mark.django_db
def test_a_new_window_forgets_the_ended_ones(client):
    config.update(WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS, 60)
    with time_machine.travel(datetime(2026, 6, 9, 12, 0, tzinfo=UTC), tick=False) as clock:
        client.post("/webhooks/products", {"item_id": "42"}, content_type="application/json", REMOTE_ADDR="10.0.0.1")
        assert WebhookAuthFailures.objects.filter(address="10.0.0.1").exists()
        clock.shift(timedelta(seconds=61))
        deliver(client, "products", {"item_id": "42"}, auth=False)
    assert list(WebhookAuthFailures.objects.values_list("address", "failures")) == [("127.0.0.1", 1)]
