"""`cleanup`: what retention deletes, what it never deletes, batches, the archive, one run at a time."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Success

from sync import queue, retention, worker
from sync.config_keys import PAUSED_ENTITIES
from sync.models import AuditTrail, DeadLetter, InboxEvent, QueueItem, SyncLog
from sync.zoho.models import ZohoCall
from tdscore import config
from tdscore.models import Metric
from tests import factories

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # an hour before the payloads' version
NOW = LONG_AGO + timedelta(days=40)


def webhook_row(object_id: str, *, entity: str = "products", payload: dict | None = None) -> QueueItem:
    body = f'{{"item_id": "{object_id}"}}'.encode()
    inbox = factories.inbox_event(entity, object_id=object_id, raw_body=body, received_at=timezone.now())
    return factories.queue_item(entity, object_id, payload=payload, inbox_event=inbox)


@pytest.fixture
def history():
    """Forty days ago: applied rows, a row still waiting, dead letters open and resolved; and today's."""
    config.update(PAUSED_ENTITIES, ["customers"])
    with time_machine.travel(LONG_AGO, tick=False):
        applied = [webhook_row(str(n)) for n in range(1001, 1004)]
        waiting = webhook_row("2001", entity="customers", payload={"contact_id": "2001"})
        unresolved = webhook_row("1004", payload={"name": "no item_id: a validation failure"})
        discarded = webhook_row("1005", payload={"name": "no item_id either"})
        worker.drain(None, worker_id="drainer", once=True)
        queue.discard(DeadLetter.objects.get(queue_item=discarded), actor=factories.actor("operator"))
        SyncLog.objects.create(message="an old line")
        factories.metric()
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        recent = webhook_row("1006")
        worker.drain(None, worker_id="drainer", once=True)
    return {"applied": applied, "waiting": waiting, "unresolved": unresolved, "discarded": discarded, "recent": recent}


def exists(item: QueueItem) -> tuple[bool, bool]:
    return QueueItem.objects.filter(pk=item.pk).exists(), InboxEvent.objects.filter(pk=item.inbox_event_id).exists()


def test_cleanup_keeps_what_is_unfinished_or_unresolved_and_deletes_the_rest_in_batches(history):
    audit_rows = AuditTrail.objects.count()
    batches = []

    with time_machine.travel(NOW, tick=False):
        result = retention.cleanup(now=timezone.now(), batch_size=2, progress=lambda name, n: batches.append((name, n)))

    assert all(exists(item) == (False, False) for item in history["applied"])
    assert exists(history["discarded"]) == (False, False)
    assert exists(history["waiting"]) == (True, True)
    assert exists(history["unresolved"]) == (True, True)
    assert exists(history["recent"]) == (True, True)
    assert DeadLetter.objects.get(queue_item=history["unresolved"]).resolved_at is None
    # The resolved dead letter is younger than its own retention: kept, its queue row unlinked.
    assert DeadLetter.objects.get(resolution="discarded").queue_item_id is None
    assert AuditTrail.objects.count() == audit_rows
    assert not Metric.objects.exists()
    assert result.counts["queue"] == 4 and result.counts["inbox"] == 4
    queue_batches = [n for name, n in batches if name == "queue"]
    assert sum(queue_batches) == 4 and len(queue_batches) >= 2 and max(queue_batches) <= 2


def test_logs_of_deleted_queue_rows_go_with_them_and_other_logs_stay_their_age(history):
    old_line = SyncLog.objects.get(message="an old line")
    discarded_logs = SyncLog.objects.filter(queue_item=history["discarded"])
    assert discarded_logs.exists()

    with time_machine.travel(NOW, tick=False):
        retention.cleanup(now=timezone.now())

    assert not discarded_logs.exists()
    assert SyncLog.objects.filter(pk=old_line.pk).exists()  # 40 days old, kept for log_retention_days (90)
    assert SyncLog.objects.filter(queue_item=history["unresolved"]).exists()


def test_dry_run_prints_counts_and_deletes_nothing(history):
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("cleanup", "--dry-run", stdout=out)

    assert "would delete 4 queue" in out.getvalue()
    assert "would delete 4 inbox" in out.getvalue()
    assert all(exists(item) == (True, True) for item in history["applied"])


def test_archive_holds_every_deleted_row_as_json_lines(history, tmp_path):
    with time_machine.travel(NOW, tick=False):
        call_command("cleanup", "--archive", str(tmp_path), stdout=StringIO())

    inbox = [row for path in tmp_path.glob("inbox-*.jsonl.gz") for row in retention.read_archive(path)]
    queued = [row for path in tmp_path.glob("queue-*.jsonl.gz") for row in retention.read_archive(path)]
    applied = history["applied"]
    assert sorted(row["object_id"] for row in queued) == ["1001", "1002", "1003", "1005"]
    assert {row["id"] for row in inbox} == {item.inbox_event_id for item in [*applied, history["discarded"]]}
    first = next(row for row in inbox if row["object_id"] == "1001")
    assert base64.b64decode(first["raw_body"]) == b'{"item_id": "1001"}'
    assert next(row for row in queued if row["object_id"] == "1001")["payload"]["item_id"] == "1001"


def test_django_q_results_and_the_zoho_call_log_expire(history):
    with time_machine.travel(LONG_AGO, tick=False):
        factories.zoho_call(started_at=timezone.now(), finished_at=timezone.now())
        old_result = factories.q_task(Success)
    in_flight = factories.zoho_call(started_at=LONG_AGO, finished_at=None)

    with time_machine.travel(NOW, tick=False):
        result = retention.cleanup(now=timezone.now())

    assert result.counts["zoho_calls"] == 1 and result.counts["task_results"] == 1
    assert not Success.objects.filter(pk=old_result.pk).exists()
    assert ZohoCall.objects.filter(pk=in_flight.pk).exists()


def test_a_second_cleanup_is_refused_while_one_runs():
    seen = []

    def second() -> None:
        try:
            retention.cleanup(now=timezone.now())
        except retention.CleanupRunning as exc:
            seen.append(str(exc))
        finally:
            connection.close()

    with retention.single_run():
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()

    assert seen and "another cleanup is running" in seen[0]
