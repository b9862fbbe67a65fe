"""`tds_status` and `replay_dlq --dry-run`: what an operator reads before acting."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from alerts.models import Alert
from sync import queue, worker
from sync.models import DeadLetter, QueueItem, SyncRun
from tests import factories
from tests.pull.test_schedules import FREE_PLAN_ORG, record_sizes

pytestmark = pytest.mark.django_db


def status_json(capsys, *args: str) -> dict:
    call_command("tds_status", "--json", *args)
    return json.loads(capsys.readouterr().out)


def test_tds_status_json_matches_the_database(capsys):
    now = timezone.now()
    factories.queue_item(object_id="1")
    factories.queue_item(payload={"name": "no id"}, object_id="2")
    worker.drain(None, worker_id="drainer-a", once=True)
    factories.queue_item(object_id="3")
    factories.dead_letter(reason=DeadLetter.Reason.LEASE_EXPIRED)
    factories.alert(severity=Alert.Severity.CRITICAL)
    factories.alert(rule="dlq_size", fingerprint="dlq_size", status=Alert.Status.RESOLVED)
    factories.worker_heartbeat("drainer-old", last_seen_at=now - timedelta(hours=1))
    factories.sync_run(
        "invoices",
        run_type=SyncRun.RunType.RECONCILIATION,
        finished_at=now,
        drift_report={"zoho": 120, "erp": 118, "drift": 2, "totals": {}},
    )
    record_sizes(FREE_PLAN_ORG)

    data = status_json(capsys)

    assert data["queue"]["by_status"] == dict(QueueItem.objects.values_list("status").annotate(n=Count("id")))
    assert data["dead_letters"] == {"lease_expired": 1, "validation": 1}
    assert [a["rule"] for a in data["alerts"]] == ["queue_backlog"]
    assert {w["worker_id"]: w["alive"] for w in data["workers"]} == {"drainer-a": True, "drainer-old": False}
    assert data["statistics"]["invoices"]["zoho"] == 120 and data["statistics"]["invoices"]["erp"] == 118
    assert {c["entity"] for c in data["cursors"]} >= set(FREE_PLAN_ORG.records)
    assert {s["name"] for s in data["schedules"]["stretched"]} == {"tds-pull-stock"}


def test_tds_status_lists_the_webhook_url_of_each_module_zoho_can_call(capsys):
    urls = status_json(capsys, "--host", "sync.example.com")["webhooks"]

    assert urls["invoices"] == "https://sync.example.com/webhooks/invoices"
    assert urls["credit-notes"] == "https://sync.example.com/webhooks/credit-notes"
    assert "prices" not in urls and "users" not in urls


def test_tds_status_says_which_schedule_was_stretched(capsys):
    record_sizes(FREE_PLAN_ORG)

    call_command("tds_status")

    assert "stretched tds-pull-stock: every 15 min → every 1 h" in capsys.readouterr().out


def test_replay_dlq_dry_run_alone_lists_every_unresolved_dead_letter(capsys):
    first = factories.dead_letter()
    second = factories.dead_letter(queue_item=factories.queue_item(object_id="1002"))
    queue.discard(second, actor=factories.actor("ops"))
    QueueItem.objects.filter(pk=first.queue_item_id).update(status=QueueItem.Status.DEAD_LETTER)

    call_command("replay_dlq", "--dry-run")

    out = capsys.readouterr().out
    assert f"would replay #{first.pk} products 1001" in out
    assert f"#{second.pk}" not in out
    first.refresh_from_db()
    assert first.resolved_at is None


def test_tds_status_reads_as_words_not_as_python(capsys, settings):
    settings.TIME_ZONE = "Asia/Dubai"
    factories.sync_cursor("products", watermark=None, last_success_at=None)
    factories.sync_cursor("invoices", watermark=timezone.now() - timedelta(hours=3), last_success_at=timezone.now())

    call_command("tds_status")
    out = capsys.readouterr().out

    assert "cursor products/incremental: watermark none yet, never succeeded" in out
    assert "None" not in out and "never ago" not in out
    assert "+04" in out and "ago)" in out  # local time (TIME_ZONE), and how long ago
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", out), "no microseconds"


def test_tds_status_builds_webhook_urls_from_tds_base_url_and_warns_when_zoho_cannot_reach_it(capsys, settings):
    settings.TDS_BASE_URL = "https://sync.example.com/"
    assert status_json(capsys)["webhooks"]["invoices"] == "https://sync.example.com/webhooks/invoices"

    settings.TDS_BASE_URL = "http://127.0.0.1:8000"
    call_command("tds_status")
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/webhooks/invoices" in out
    assert "Zoho cannot reach http://127.0.0.1:8000: set TDS_BASE_URL" in out


def test_pause_entity_and_resume_entity_change_what_is_applied_and_tds_status_says_so(capsys):
    factories.queue_item("invoices", "7")

    call_command("pause_entity", "invoices", "stock")
    assert capsys.readouterr().out.strip() == "paused invoices, stock; paused now: invoices, stock"
    data = status_json(capsys)
    assert data["paused"]["entities"] == ["invoices", "stock"] and data["paused"]["rows_held"] == 1
    call_command("tds_status")
    assert "Paused: invoices, stock since" in capsys.readouterr().out

    call_command("resume_entity", "stock")
    assert capsys.readouterr().out.strip() == "resumed stock; paused now: invoices"
    assert worker.process_batch("w", timezone.now()) == 0, "invoices still wait"
    call_command("resume_entity", "invoices")
    assert capsys.readouterr().out.strip() == "resumed invoices; paused now: none"
    assert worker.process_batch("w", timezone.now()) == 1
    assert status_json(capsys)["paused"]["entities"] == []


def test_pausing_an_unknown_entity_names_the_real_ones():
    with pytest.raises(CommandError, match="unknown entities widgets; the entities are products, customers"):
        call_command("pause_entity", "widgets")
