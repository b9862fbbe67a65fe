"""Operator actions: replay_dlq, the admin actions on dead letters and queue rows, process_queue."""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.urls import reverse

from sync import queue
from sync.config_keys import PAUSED_ENTITIES
from sync.errors import ValidationFailed
from sync.models import DeadLetter, QueueItem, SyncLog
from tdscore import config
from tdscore.actions import Actor
from tests import factories
from tests.factories import inbox_event, queue_item

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def dead_lettered(entity: str = "products", object_id: str = "1") -> DeadLetter:
    item = queue_item(entity, object_id, payload={"item_id": object_id}, now=NOW)
    batch = queue.claim_batch(worker_id="w", now=NOW)
    queue.record_failure(batch, batch.items[0], ValidationFailed("bad rate"), now=NOW, rng=random.Random())
    return DeadLetter.objects.get(queue_item=item)


def test_replay_dlq_refuses_without_a_filter_or_all():
    dead_lettered()
    with pytest.raises(CommandError, match="without --all"):
        call_command("replay_dlq")
    assert DeadLetter.objects.unresolved().count() == 1


def test_replay_dlq_by_entity_requeues_only_that_entity(capsys):
    product, customer = dead_lettered("products", "1"), dead_lettered("customers", "2")
    call_command("replay_dlq", entity="products")
    product.refresh_from_db(), customer.refresh_from_db()
    assert (product.resolution, product.resolved_by) == ("replayed", Actor.command().name)
    assert product.queue_item.status == QueueItem.Status.PENDING
    assert customer.resolved_at is None
    assert capsys.readouterr().out.splitlines()[-1] == "replayed 1"


def test_replay_dlq_dry_run_changes_nothing(capsys):
    dead = dead_lettered()
    call_command("replay_dlq", "--all", "--dry-run")
    dead.refresh_from_db()
    assert dead.resolved_at is None and dead.queue_item.status == QueueItem.Status.DEAD_LETTER
    assert "would replay 1" in capsys.readouterr().out


def test_replay_dlq_dry_run_writes_nothing_and_logs_no_replay(caplog, capsys):
    dead = dead_lettered()
    logs = SyncLog.objects.count()
    with caplog.at_level(logging.INFO):
        call_command("replay_dlq", "--all", "--dry-run")
    assert SyncLog.objects.count() == logs
    assert not [r for r in caplog.records if "replayed from dead letter" in r.getMessage()]
    dead.refresh_from_db()
    assert dead.resolved_at is None and dead.queue_item.status == QueueItem.Status.DEAD_LETTER


def test_a_dry_run_over_an_ingest_failure_says_it_would_not_replay_it_and_succeeds(capsys):
    dead_lettered()
    # Refused at the door: kept and dead-lettered with no queue row.
    ingest = DeadLetter.objects.create(entity="products", object_id="", payload={}, reason=DeadLetter.Reason.VALIDATION)
    call_command("replay_dlq", "--all", "--dry-run")  # exits 0: a dry run fails at nothing
    captured = capsys.readouterr()
    assert f"would not replay #{ingest.pk}" in captured.err and "no queue row to replay" in captured.err
    assert captured.out.splitlines()[-1] == "would replay 1, 1 cannot be replayed (discard them or mark them fixed)"


def test_replay_dlq_reports_a_resolved_id_and_exits_nonzero(capsys):
    dead = dead_lettered()
    queue.discard(dead, actor=factories.actor("ops"), now=NOW)
    with pytest.raises(CommandError, match="could not be replayed"):
        call_command("replay_dlq", id=dead.pk)
    assert "already discarded" in capsys.readouterr().err


def changelist_action(client, model: str, action: str, ids: list[int]):
    url = reverse(f"admin:sync_{model}_changelist")
    # `post`: confirmed, as the replay's confirmation page posts back (other actions ignore it).
    data = {"action": action, "_selected_action": [str(i) for i in ids], "post": "yes"}
    return client.post(url, data, follow=True)


@pytest.fixture
def admin_client_(client, superuser):
    client.force_login(superuser)
    return client


def test_admin_replays_selected_dead_letters_in_bulk(admin_client_):
    first, second = dead_lettered("products", "1"), dead_lettered("products", "2")
    response = changelist_action(admin_client_, "deadletter", "replay_selected", [first.pk, second.pk])
    assert response.status_code == 200
    assert "2 dead letter(s) replayed" in response.content.decode()
    assert set(DeadLetter.objects.values_list("resolution", "resolved_by")) == {("replayed", "root")}
    assert QueueItem.objects.filter(status="pending").count() == 2


def test_admin_discard_reports_rows_already_resolved(admin_client_):
    dead = dead_lettered()
    queue.replay(dead, actor=factories.actor("ops"), now=NOW)
    response = changelist_action(admin_client_, "deadletter", "discard_selected", [dead.pk])
    assert "already replayed by ops" in response.content.decode()
    dead.refresh_from_db()
    assert dead.resolution == "replayed"


def test_admin_says_an_ingest_dead_letter_cannot_be_replayed(admin_client_):
    dead = queue.dead_letter_at_ingest(
        inbox_event=inbox_event(), entity="products", payload={}, error="no item_id", now=NOW
    )
    response = changelist_action(admin_client_, "deadletter", "replay_selected", [dead.pk])
    assert "shape failure at ingest" in response.content.decode()
    response = changelist_action(admin_client_, "deadletter", "mark_fixed_selected", [dead.pk])
    dead.refresh_from_db()
    assert dead.resolution == "fixed"


def test_admin_pauses_and_resumes_the_entity_of_selected_rows(admin_client_):
    item = queue_item("products", "1", now=NOW)
    changelist_action(admin_client_, "queueitem", "pause_entities", [item.pk])
    assert config.get(PAUSED_ENTITIES) == ["products"]
    assert queue.claim_batch(worker_id="w", now=NOW) is None
    response = changelist_action(admin_client_, "queueitem", "resume_entities", [item.pk])
    assert "Paused now: none" in response.content.decode()
    assert queue.claim_batch(worker_id="w", now=NOW) is not None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_pauses_at_once_both_hold():
    """Two operators pause two entities at the same moment: both stay paused.

    The configuration row is held locked by a third connection until both pauses are under way, so
    they overlap for certain rather than by luck; then it is let go.
    """
    config.ensure_rows()  # a transactional test starts from emptied tables
    dsn = connection.get_connection_params()
    with psycopg.connect(
        dbname=dsn["dbname"], user=dsn.get("user"), host=dsn.get("host"), port=dsn.get("port")
    ) as held:
        held.execute("SELECT 1 FROM tds_configuration WHERE key = 'paused_entities' FOR UPDATE")
        threads = [threading.Thread(target=pause_in_own_connection, args=(slug,)) for slug in ("products", "customers")]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while waiting_on_locks() < 2:
            assert time.monotonic() < deadline, "the two pauses never overlapped"
            time.sleep(0.02)
        held.rollback()
    for thread in threads:
        thread.join(timeout=20)
    config.invalidate()
    assert config.get(PAUSED_ENTITIES) == ["customers", "products"]


def pause_in_own_connection(slug: str) -> None:
    try:
        queue.pause([slug], actor=factories.actor())
    finally:
        connections.close_all()


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]
