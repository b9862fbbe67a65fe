"""An idle drainer is woken when work commits, not only by its poll interval (sync.wakeup).

Real drainer processes (`manage.py process_queue`) on the test database, with the poll interval
set far beyond the time the test allows, so only a wake-up can apply the change in time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from erp.models import Product
from sync import queue, wakeup
from sync.config_keys import QUEUE_POLL_INTERVAL_MS
from sync.models import DeadLetter, QueueItem
from tdscore import config
from tests import factories
from tests.factories import queue_item
from tests.infra.conftest import shared_database_url
from tests.webhooks.conftest import TOKENS, deliver

pytestmark = pytest.mark.django_db(transaction=True)
BASE_DIR = Path(settings.BASE_DIR)
REDIS_URL = "redis://127.0.0.1:6379/0"
LONG_POLL_MS = 30_000
WELL_INSIDE_ONE_POLL = 5.0  # seconds; a drainer left to its poll would take 30


def product(n: int, minute: int = 0) -> dict:
    stamp = datetime(2026, 11, 1, 10, minute, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    return {"item_id": f"w{n}", "name": f"woken {n}", "last_modified_time": stamp}


@pytest.fixture
def webhooks(settings):
    settings.TDS_WEBHOOK_TOKEN = TOKENS
    return settings


@pytest.fixture
def start_drainer(tmp_path):
    """start_drainer(**env) -> a `process_queue` process on the test database; stopped afterwards."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(**env: str) -> subprocess.Popen:
        log = tmp_path / f"drainer-{len(started)}.log"
        environment = {
            **os.environ,
            "DATABASE_URL": shared_database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "TDS_CONFIG_CACHE_SECONDS": "0.2",
            "REDIS_URL": "",
            "Q_BROKER": "orm",
            "TDS_WAKEUPS": "true",
            **env,
        }
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "process_queue"],
                cwd=BASE_DIR,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        print(log.read_text(errors="replace")[-3000:])  # shown when the test fails


def drainer_name(process: subprocess.Popen) -> str:
    return f"tds-drainer {socket.gethostname()}:{process.pid}"[:63]


def listening_backend(process: subprocess.Popen) -> int | None:
    """The PostgreSQL backend of the drainer's listening connection, found as an operator would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
            " AND query = %s",
            [drainer_name(process), f"LISTEN {wakeup.CHANNEL}"],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def wait_for(condition, *, within: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + within
    while not (found := condition()):
        assert process is None or process.poll() is None, f"the drainer exited while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        time.sleep(0.02)
    return found


def applied_within(seconds: float, item_id: str) -> float:
    """Seconds until the product is in the ERP (fails past `seconds`)."""
    started = time.monotonic()
    wait_for(lambda: Product.objects.filter(zoho_id=item_id).exists(), within=seconds, what=f"product {item_id}")
    return time.monotonic() - started


@pytest.fixture
def listener():
    """A connection LISTENing on the drainers' channel, as a drainer's does."""
    conn = psycopg.Connection.connect(shared_database_url(), autocommit=True)
    conn.execute(f"LISTEN {wakeup.CHANNEL}")
    yield conn
    conn.close()


def received(conn: psycopg.Connection, seconds: float) -> int:
    """Notifications received in the next `seconds`."""
    return sum(1 for _ in conn.notifies(timeout=seconds))


def woken(conn: psycopg.Connection, within: float) -> bool:
    return any(True for _ in conn.notifies(timeout=within, stop_after=1))


@pytest.mark.postgres
def test_an_idle_drainer_is_woken_by_a_webhook_well_inside_its_poll_interval(client, webhooks, start_drainer):
    webhooks.TDS_WAKEUP_REDIS_URL = ""
    config.update(QUEUE_POLL_INTERVAL_MS, LONG_POLL_MS)
    drainer = start_drainer()
    # Listening, under its own name, on a connection outside the pool: it has looked once and waits.
    wait_for(lambda: listening_backend(drainer), within=60, what="listening connection", process=drainer)
    time.sleep(0.3)
    assert deliver(client, "products", product(1)).status_code == 202
    assert applied_within(WELL_INSIDE_ONE_POLL, "w1") < WELL_INSIDE_ONE_POLL
    # And again, now that it has worked and gone back to waiting.
    time.sleep(0.3)
    assert deliver(client, "products", product(2)).status_code == 202
    assert applied_within(WELL_INSIDE_ONE_POLL, "w2") < WELL_INSIDE_ONE_POLL


@pytest.mark.postgres
def test_a_drainer_whose_listening_connection_is_killed_still_applies_after_one_poll_and_listens_again(
    client, webhooks, start_drainer
):
    webhooks.TDS_WAKEUP_REDIS_URL = ""
    poll = 2.0
    config.update(QUEUE_POLL_INTERVAL_MS, int(poll * 1000))
    drainer = start_drainer()
    first = wait_for(lambda: listening_backend(drainer), within=60, what="listening connection", process=drainer)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])
    # Sent while nobody may be listening: the wake-up can be lost, the change cannot.
    assert deliver(client, "products", product(1)).status_code == 202
    applied_within(poll + 3.0, "w1")
    second = wait_for(
        lambda: (pid := listening_backend(drainer)) != first and pid,
        within=2 * poll + 3.0,
        what="listening connection after the kill",
        process=drainer,
    )
    assert second != first
    # Listening again means woken again: with the poll back at 30 s, only a wake-up is in time.
    config.update(QUEUE_POLL_INTERVAL_MS, LONG_POLL_MS)
    time.sleep(poll + 0.5)  # the drainer's current wait ends; the next one reads the 30 s
    assert deliver(client, "products", product(2)).status_code == 202
    applied_within(WELL_INSIDE_ONE_POLL, "w2")


@pytest.mark.postgres
def test_the_wake_up_follows_the_commit_of_the_webhook_never_comes_from_inside_it(client, webhooks, listener):
    webhooks.TDS_WAKEUP_REDIS_URL = ""
    # The webhook's transaction held open, as ATOMIC_REQUESTS or a slow commit would hold it.
    with transaction.atomic():
        assert deliver(client, "products", product(1)).status_code == 202
        # Nothing announced yet: a drainer woken now would find no row it can see, and sleep.
        assert received(listener, 0.5) == 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%%' AND query ILIKE '%%notify%%'"
            )
            assert cursor.fetchone()[0] == 0
    notifications = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in notifications] == [wakeup.CHANNEL]
    # Woken, a drainer sees the row: the notification came after the commit.
    assert listener.execute("SELECT count(*) FROM tds_sync_queue WHERE object_id = 'w1'").fetchone() == (1,)


@pytest.mark.postgres
def test_a_burst_of_webhooks_committed_together_wakes_the_drainers_once_or_twice(client, webhooks, listener):
    webhooks.TDS_WAKEUP_REDIS_URL = ""
    with transaction.atomic():
        for n in range(20):
            assert deliver(client, "products", product(n)).status_code == 202
    assert 1 <= received(listener, 1.0) <= 2


@pytest.mark.postgres
def test_pull_pages_replays_and_repairs_wake_the_drainers_when_they_commit(listener, settings):
    settings.TDS_WAKEUP_REDIS_URL = ""
    now = timezone.now()
    # A pull's page.
    with transaction.atomic():
        queue.enqueue_many(
            [
                QueueItem(
                    entity="products", object_id=f"p{n}", payload={"item_id": f"p{n}"}, source=QueueItem.Source.PULL
                )
                for n in range(3)
            ],
            now=now,
        )
        assert received(listener, 0.3) == 0
    assert woken(listener, within=2.0)
    # A reconciliation's repair.
    queue_item(now=now, object_id="r1", source=QueueItem.Source.RECONCILE)
    assert woken(listener, within=2.0)
    # A replay of a dead letter.
    item = queue_item(now=now, object_id="d1")
    QueueItem.objects.filter(pk=item.pk).update(status=QueueItem.Status.DEAD_LETTER)
    dead = DeadLetter.objects.create(
        queue_item=item, entity="products", object_id="d1", reason=DeadLetter.Reason.RETRIES_EXHAUSTED, error="boom"
    )
    received(listener, 0.3)  # the row's own enqueue
    queue.replay(dead, actor=factories.actor("test"))
    assert woken(listener, within=2.0)


@pytest.mark.postgres
def test_with_wakeups_turned_off_nothing_is_sent_and_drainers_poll(client, webhooks, listener):
    webhooks.TDS_WAKEUPS = False
    webhooks.TDS_WAKEUP_REDIS_URL = ""
    assert deliver(client, "products", product(1)).status_code == 202
    assert received(listener, 0.5) == 0


def redis_subscribed(process: subprocess.Popen) -> bool:
    name = drainer_name(process).replace(" ", "/")
    return any(
        c.get("name") == name and int(c.get("sub", 0)) >= 1 for c in redis.Redis.from_url(REDIS_URL).client_list()
    )


@pytest.mark.postgres  # a drainer process shares the test database: SQLite's is in memory
def test_with_redis_configured_an_idle_drainer_is_woken_through_redis(client, webhooks, start_drainer):
    webhooks.TDS_WAKEUP_REDIS_URL = REDIS_URL
    config.update(QUEUE_POLL_INTERVAL_MS, LONG_POLL_MS)
    drainer = start_drainer(REDIS_URL=REDIS_URL)
    wait_for(lambda: redis_subscribed(drainer), within=60, what="Redis subscription", process=drainer)
    time.sleep(0.3)
    assert deliver(client, "products", product(1)).status_code == 202
    applied_within(WELL_INSIDE_ONE_POLL, "w1")
