from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone

from erp.models import Invoice, Product
from sync import reconcile
from sync.models import QueueItem, SyncRun
from sync.payloads import content_hash
from sync.queue import enqueue

from .conftest import PAGE, drain

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def drifted(sim, run_pull):
    """Products in step, then one of each kind of drift planted on one side or the other."""
    products = sim.seed("products", PAGE * 3)
    run_pull("products", "full")
    drain()
    missing, outdated, gone, revived = (p["item_id"] for p in products[:4])
    Product.objects.filter(zoho_id=missing).delete()  # a row the ERP never got
    sim.advance(60)
    sim.update("products", outdated, name="Edited in Zoho")  # an edit whose webhook never came
    sim.delete("products", gone)  # a delete whose webhook never came
    # A delete the ERP applied that Zoho never made (a mistaken delete webhook).
    enqueue(
        entity="products",
        object_id=revived,
        payload={"item_id": revived},
        content_hash=content_hash({"item_id": revived}),
        version=None,
        source="webhook",
        now=timezone.now(),
        operation=QueueItem.Operation.DELETE,
    )
    drain()
    return {"missing": missing, "outdated": outdated, "deleted_in_zoho": gone, "tombstoned_alive": revived}


def test_reconciliation_finds_each_kind_of_planted_drift(drifted):
    run = reconcile.reconcile_entity("products", now=timezone.now())

    assert run.status == SyncRun.Status.COMPLETED, run.error
    report = run.drift_report
    assert report["totals"] == dict.fromkeys(drifted, 1)
    found = {kind: ids for b in report["buckets"].values() for kind, ids in b.items() if kind in drifted}
    assert {kind: entry["ids"] for kind, entry in found.items()} == {k: [v] for k, v in drifted.items()}
    assert not QueueItem.objects.filter(source="reconcile").exists()  # a report, no repairs


def test_repair_queues_fixes_that_bring_the_erp_back_in_step(drifted):
    run = reconcile.reconcile_entity("products", now=timezone.now(), repair=True)
    assert run.drift_report["queued"] == 4
    drain()

    assert Product.objects.get(zoho_id=drifted["missing"]).deleted_at is None
    assert Product.objects.get(zoho_id=drifted["outdated"]).name == "Edited in Zoho"
    assert Product.objects.get(zoho_id=drifted["deleted_in_zoho"]).deleted_at is not None
    assert Product.objects.get(zoho_id=drifted["tombstoned_alive"]).deleted_at is None
    again = reconcile.reconcile_entity("products", now=timezone.now())
    assert again.drift_report["drift"] == 0


def test_repairs_of_documents_fetch_details_so_lines_come_too(sim, run_pull):
    invoices = sim.seed("invoices", 5)
    run_pull("invoices", "full")
    drain()
    Invoice.objects.filter(zoho_id=invoices[0]["invoice_id"]).delete()

    run = reconcile.reconcile_entity("invoices", now=timezone.now(), repair=True)
    drain()

    assert run.drift_report["totals"]["missing"] == 1
    restored = Invoice.objects.get(zoho_id=invoices[0]["invoice_id"])
    assert restored.is_summary is False


def test_buckets_are_months_of_the_document_date(sim, run_pull):
    invoices = sim.seed("invoices", 3)
    run_pull("invoices", "full")
    drain()
    sim.delete("invoices", invoices[0]["invoice_id"])

    report = reconcile.reconcile_entity("invoices", now=timezone.now()).drift_report

    assert list(report["buckets"]) == [invoices[0]["date"][:7]]


def test_reconcile_command_reports_and_repairs(drifted, capsys):
    call_command("reconcile", "--entity", "products", "--repair")
    drain()

    out = capsys.readouterr().out
    assert "missing 1, outdated 1, deleted_in_zoho 1, tombstoned_alive 1; 4 repairs queued" in out
    assert Product.objects.get(zoho_id=drifted["outdated"]).name == "Edited in Zoho"


def test_a_failed_reconciliation_keeps_its_traceback(sim, settings):
    from sync.zoho.client import ZohoClient

    sim.seed("products", 3)
    settings.ZOHO_ORGANIZATION_ID = "not-this-organisation"  # Zoho answers 400 code 6041

    run = reconcile.reconcile_entity("products", now=timezone.now(), client=ZohoClient())

    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("ZohoError: ")
    assert "Traceback (most recent call last)" in run.logs.get(level="error").context["traceback"]
