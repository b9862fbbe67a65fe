"""Preview before replay: what each dead letter would do to the ERP, worked out and rolled back.

The function the doors share (sync.replay_preview.preview), then each door: the API's dry run,
`replay_dlq --dry-run` and the admin's confirmation page.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from erp.models import Invoice, InvoiceLine
from sync import entities, queue, replay_preview, worker
from sync.errors import ValidationFailed
from sync.models import AuditTrail, DeadLetter, QueueItem
from sync.payloads import content_hash, version_of
from tdscore.actions import Actor, Via

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parents[2] / "zohosim" / "samples" / "books-invoice.json"


def invoice(minutes: int, **fields) -> dict:
    obj = json.loads(SAMPLE.read_text())["invoice"] | {"invoice_id": "77", **fields}
    obj["last_modified_time"] = (NOW - timedelta(hours=2, minutes=-minutes)).strftime("%Y-%m-%dT%H:%M:%S%z")
    return obj


def enqueue(obj: dict) -> QueueItem:
    located = entities.locate("invoices", obj)
    return queue.enqueue(
        entity="invoices",
        object_id=located.object_id,
        payload=located.obj,
        content_hash=content_hash(located.obj),
        version=version_of(located.obj),
        source=QueueItem.Source.WEBHOOK,
        now=NOW,
    )


def stored(obj: dict) -> None:
    enqueue(obj)
    assert worker.process_batch("w", NOW) == 1


def dead_letter(obj: dict, error: str = "the ERP's trigger refused it") -> DeadLetter:
    """A change the drain gave up on: its queue row dead-lettered, as the worker leaves it."""
    item = enqueue(obj)
    batch = queue.claim_batch(worker_id="w", now=NOW)
    queue.record_failure(batch, batch.items[0], ValidationFailed(error), now=NOW, rng=random.Random(1))
    return DeadLetter.objects.get(queue_item=item)


def counts() -> dict[str, int]:
    """Rows of every table the apply or a replay could write: ERP, queue, dead letters, audit, logs, drift."""
    models = [*apps.get_app_config("erp").get_models(), *apps.get_app_config("sync").get_models()]
    return {model._meta.db_table: model.objects.count() for model in models}


def unresolved_state() -> list:
    return list(DeadLetter.objects.order_by("pk").values_list("pk", "resolved_at", "queue_item__status"))


def test_a_preview_writes_nothing_and_matches_what_the_replay_then_does():
    stored(invoice(0, status="sent", total=598))
    dead = dead_letter(invoice(5, status="paid", total=650, balance=0, loyalty_tier="gold"))
    before, letters = counts(), unresolved_state()

    [preview] = replay_preview.preview([dead], now=NOW)

    assert counts() == before and unresolved_state() == letters
    assert (preview.dead_letter_id, preview.entity, preview.object_id) == (dead.pk, "invoices", "77")
    assert preview.outcome == "apply" and preview.error == ""
    assert preview.changes["status"] == ["sent", "paid"] and preview.changes["total"] == ["598", "650"]
    queue.replay(dead, actor=Actor("ops", Via.COMMAND), now=NOW)
    assert worker.process_batch("w", NOW) == 1
    audit = AuditTrail.objects.filter(queue_item_id=dead.queue_item_id).get()
    assert preview.changes == {name: [audit.before[name], audit.after[name]] for name in audit.changed_fields}
    row = Invoice.objects.get(zoho_id="77")
    assert (row.status, str(row.total)) == ("paid", "650.000000")


def test_a_dead_letter_that_would_fail_again_says_why_and_writes_nothing():
    dead = dead_letter(invoice(0, date="the ninth of June"))
    before = counts()

    [preview] = replay_preview.preview([dead], now=NOW)

    assert preview.outcome == "fail" and preview.replayable
    assert "not a date: 'the ninth of June'" in preview.error
    assert preview.changes == {} and counts() == before


def test_an_older_dead_letter_than_the_stored_row_is_stale():
    stored(invoice(10, status="paid"))
    [preview] = replay_preview.preview([dead_letter(invoice(0, status="sent"))], now=NOW)
    assert (preview.outcome, preview.changes) == ("stale", {})


def test_each_dead_letter_sees_what_the_ones_before_it_would_write():
    newer, older = dead_letter(invoice(10, status="paid")), dead_letter(invoice(0, status="sent"))
    first, second = replay_preview.preview([older, newer], now=NOW)  # replayed by id: newer first
    assert (first.dead_letter_id, first.outcome) == (newer.pk, "apply")
    assert (second.dead_letter_id, second.outcome) == (older.pk, "stale")
    assert Invoice.objects.count() == 0


def test_lines_are_shown_before_and_after():
    stored(invoice(0))
    obj = invoice(5)
    obj["line_items"] = [obj["line_items"][0] | {"quantity": 3, "item_total": 897}]
    [preview] = replay_preview.preview([dead_letter(obj)], now=NOW)
    before, after = preview.changes["lines"]
    assert (before[0]["quantity"], after[0]["quantity"]) == ("2", "3")
    assert InvoiceLine.objects.get().quantity == 2


def test_a_dead_letter_that_cannot_be_replayed_is_a_failure_saying_why():
    ingest = DeadLetter.objects.create(entity="invoices", payload={}, reason=DeadLetter.Reason.VALIDATION)
    [preview] = replay_preview.preview([ingest], now=NOW)
    assert (preview.outcome, preview.replayable) == ("fail", False)
    assert "no queue row to replay" in preview.error


# --- The doors ----------------------------------------------------------------------------------


def test_the_api_dry_run_answers_the_previews_and_writes_nothing(staff_user):
    stored(invoice(0, status="sent"))
    dead = dead_letter(invoice(5, status="paid"))
    broken = dead_letter(invoice(6, date="soon") | {"invoice_id": "78"})
    before, letters = counts(), unresolved_state()
    api = APIClient()
    api.force_authenticate(staff_user)

    answer = api.post(reverse("api:dead-letter-bulk-retry"), {"entity": "invoices", "dry_run": True}, format="json")

    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 2
    good, bad = body["previews"]
    assert set(good) == {"dead_letter_id", "entity", "object_id", "outcome", "changes", "error"}
    assert (good["dead_letter_id"], good["outcome"], good["changes"]["status"]) == (dead.pk, "apply", ["sent", "paid"])
    assert (bad["dead_letter_id"], bad["outcome"], bad["changes"]) == (broken.pk, "fail", {})
    assert "not a date: 'soon'" in bad["error"]
    assert counts() == before and unresolved_state() == letters


def test_the_api_dry_run_needs_the_replay_permission(viewer):
    dead_letter(invoice(0))
    api = APIClient()
    api.force_authenticate(viewer)
    answer = api.post(reverse("api:dead-letter-bulk-retry"), {"all": True, "dry_run": True}, format="json")
    assert answer.status_code == 403


def test_replay_dlq_dry_run_prints_each_change_before_and_after(capsys):
    stored(invoice(0, status="sent"))
    dead = dead_letter(invoice(5, status="paid"))
    broken = dead_letter(invoice(6, date="soon") | {"invoice_id": "78"})
    before = counts()

    call_command("replay_dlq", "--all", "--dry-run")

    out = capsys.readouterr().out
    assert f"would replay #{dead.pk} invoices 77 (validation): would apply" in out
    assert '    status: "sent" → "paid"' in out
    assert f"would replay #{broken.pk} invoices 78 (validation): would fail again: ValidationFailed:" in out
    assert out.splitlines()[-1] == "would replay 2"
    assert counts() == before


def test_the_admins_bulk_replay_shows_the_preview_then_replays_on_confirmation(client, superuser):
    stored(invoice(0, status="sent"))
    dead = dead_letter(invoice(5, status="paid"))
    client.force_login(superuser)
    changelist = reverse("admin:sync_deadletter_changelist")
    before = counts()

    page = client.post(changelist, {"action": "replay_selected", "_selected_action": [str(dead.pk)]})

    html = page.content.decode()
    assert page.status_code == 200 and "Replay these dead letters?" in html
    assert "would apply: " in html and "<td>status</td>" in html and "&quot;paid&quot;" in html
    assert 'name="post" value="yes"' in html and "Yes, replay 1 dead letter" in html
    assert counts() == before
    dead.refresh_from_db()
    assert dead.resolved_at is None

    done = client.post(
        changelist, {"action": "replay_selected", "_selected_action": [str(dead.pk)], "post": "yes"}, follow=True
    )
    assert "1 dead letter(s) replayed" in done.content.decode()
    assert worker.process_batch("w", timezone.now()) == 1
    assert Invoice.objects.get(zoho_id="77").status == "paid"


def test_requeueing_queue_rows_in_the_admin_shows_the_same_preview_first(client, superuser):
    stored(invoice(0, status="sent"))
    dead = dead_letter(invoice(5, status="paid"))
    client.force_login(superuser)
    changelist = reverse("admin:sync_queueitem_changelist")
    chosen = {"action": "requeue_selected", "_selected_action": [str(dead.queue_item_id)]}

    page = client.post(changelist, chosen).content.decode()

    assert "Replay these dead letters?" in page and "<td>status</td>" in page
    assert f'name="_selected_action" value="{dead.queue_item_id}"' in page and 'value="requeue_selected"' in page
    assert QueueItem.objects.get(pk=dead.queue_item_id).status == "dead_letter"
    done = client.post(changelist, {**chosen, "post": "yes"}, follow=True).content.decode()
    assert "1 dead letter(s) requeued" in done
