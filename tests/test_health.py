"""/health and /health/ready: a dead database is 503; anything else is never worse than degraded."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from monitoring import health
from sync.config_keys import (
    HEARTBEAT_GRACE_SECONDS,
    HEARTBEAT_PERIOD_SECONDS,
    PAUSED_ENTITIES,
    QUEUE_BACKLOG_THRESHOLD,
    QUEUE_PROGRESS_PERIOD_SECONDS,
)
from sync.models import QueueItem, WorkerHeartbeat
from tdscore import config

pytestmark = pytest.mark.django_db


@contextmanager
def database_down():
    """Every query fails as it would with the server gone: injected at the connection's one seam."""

    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection refused")

    with connection.execute_wrapper(refuse):
        yield


def heartbeat(seconds_ago: float = 0) -> WorkerHeartbeat:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    return WorkerHeartbeat.objects.create(worker_id=f"w{seconds_ago}", hostname="test", pid=1, last_seen_at=seen)


def test_health_is_ok_when_the_database_answers(client):
    response = client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_health_is_503_when_the_database_does_not_answer(client):
    with database_down():
        response = client.get("/health")
    assert (response.status_code, response.json()) == (503, {"status": "down"})


def test_health_refuses_other_methods(client):
    assert client.post("/health").status_code == 405


def test_ready_is_503_down_only_when_the_database_does_not_answer(client):
    with database_down():
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["checks"]["database"]["status"] == "down"


def test_ready_without_a_worker_heartbeat_is_degraded_but_200(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == {"status": "ok", "detail": "answers"}
    assert body["checks"]["workers"]["status"] == "degraded"


def test_ready_counts_a_fresh_heartbeat_and_ignores_a_stale_one(client):
    window = config.get(HEARTBEAT_PERIOD_SECONDS) + config.get(HEARTBEAT_GRACE_SECONDS)
    heartbeat(seconds_ago=window + 5)
    assert client.get("/health/ready").json()["checks"]["workers"]["status"] == "degraded"
    heartbeat(seconds_ago=1)
    assert client.get("/health/ready").json()["checks"]["workers"] == {"status": "ok", "detail": "1 alive"}


def test_ready_is_degraded_when_the_queue_passes_the_backlog_threshold(client):
    config.update(QUEUE_BACKLOG_THRESHOLD, 2)
    for object_id in ("1", "2"):
        QueueItem.objects.create(entity="products", object_id=object_id, content_hash="0", payload={}, source="pull")
    checks = client.get("/health/ready").json()["checks"]
    assert checks["queue"] == {"status": "degraded", "detail": "2 rows waiting"}


def test_ready_with_healthy_workers_and_queue_says_so(client):
    heartbeat()
    checks = client.get("/health/ready").json()["checks"]
    assert checks["workers"]["status"] == checks["queue"]["status"] == "ok"


def test_a_failing_readiness_check_degrades_instead_of_a_500(client, monkeypatch):
    def broken(now):
        raise RuntimeError("zoho state unreadable")

    monkeypatch.setitem(health.READINESS_CHECKS, "broken", broken)
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["broken"] == {
        "status": "degraded",
        "detail": "check failed: RuntimeError: zoho state unreadable",
    }


def test_ready_is_degraded_when_the_next_due_row_stops_moving(client):
    config.update(QUEUE_PROGRESS_PERIOD_SECONDS, 300)
    heartbeat()  # workers look alive: only the queue tells
    now = timezone.now()
    stuck = QueueItem.objects.create(
        entity="products",
        object_id="1",
        content_hash="0",
        payload={},
        source="pull",
        next_attempt_at=now - timedelta(minutes=10),
    )
    queue = client.get("/health/ready").json()["checks"]["queue"]
    assert queue["status"] == "degraded"
    assert queue["detail"].startswith("1 row waiting; not moving: the next due row has waited 600 s")

    QueueItem.objects.create(
        entity="customers",
        object_id="2",
        content_hash="0",
        payload={},
        source="pull",
        status=QueueItem.Status.COMPLETED,
        finished_at=now - timedelta(minutes=1),
    )
    assert client.get("/health/ready").json()["checks"]["queue"]["status"] == "ok", "rows finish: it moves"
    assert stuck.status == QueueItem.Status.PENDING


def test_rows_of_a_paused_entity_waiting_long_do_not_degrade_readiness(client):
    config.update_many({QUEUE_PROGRESS_PERIOD_SECONDS: 300, PAUSED_ENTITIES: ["products"]})
    QueueItem.objects.create(
        entity="products",
        object_id="1",
        content_hash="0",
        payload={},
        source="pull",
        next_attempt_at=timezone.now() - timedelta(hours=1),
    )
    assert client.get("/health/ready").json()["checks"]["queue"] == {
        "status": "paused",
        "detail": "1 row waiting; paused: products (1 row held)",
    }


def test_a_paused_entity_is_said_by_readiness_even_with_nothing_waiting(client):
    config.update_many({PAUSED_ENTITIES: ["invoices", "stock"]})
    body = client.get("/health/ready").json()
    assert body["checks"]["queue"] == {
        "status": "paused",
        "detail": "0 rows waiting; paused: invoices, stock (0 rows held)",
    }
    assert body["status"] == "degraded"  # not everything that arrives is applied
