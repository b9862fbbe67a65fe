"""A parent still missing after `parent_wait_minutes` is fetched from Zoho once, by heal."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from erp.models import Customer, Invoice
from sync import healing, reconcile
from sync.config_keys import PARENT_WAIT_MINUTES
from sync.models import ParentWait, QueueItem
from sync.zoho.client import ZohoClient
from tdscore import config
from tests.handlers.conftest import enqueue, sample
from tests.pull.conftest import drain

pytestmark = pytest.mark.django_db

SAMPLE = sample("books-invoice")
# Its lines name no item, so the customer is the one parent awaited.
INVOICE = {**SAMPLE, "line_items": [{**line, "item_id": ""} for line in SAMPLE["line_items"]]}
CONTACT = sample("books-contact")
CUSTOMER_ID = INVOICE["customer_id"]


def contact_calls(sim) -> list:
    return [r for r in sim.api_calls() if r.path.endswith(f"/contacts/{CUSTOMER_ID}")]


def invoice_without_its_customer() -> None:
    enqueue("invoices", INVOICE, now=timezone.now())
    drain()
    assert Invoice.objects.get().customer_ref is None


def test_a_missing_parent_is_fetched_once_after_the_wait(sim):
    sim.add("customers", {k: v for k, v in CONTACT.items() if k != "last_modified_time"})
    config.update_many({PARENT_WAIT_MINUTES: 0})
    invoice_without_its_customer()
    healing.heal(now=timezone.now())
    assert len(contact_calls(sim)) == 1
    assert QueueItem.objects.filter(source=QueueItem.Source.PARENT, object_id=CUSTOMER_ID).count() == 1
    drain()
    assert Invoice.objects.get().customer_ref == Customer.objects.get()
    healing.heal(now=timezone.now())
    assert len(contact_calls(sim)) == 1 and not ParentWait.objects.exists()


def test_a_fetch_is_never_made_twice_for_one_parent(sim):
    sim.add("customers", {k: v for k, v in CONTACT.items() if k != "last_modified_time"})
    config.update_many({PARENT_WAIT_MINUTES: 0})
    invoice_without_its_customer()
    healing.heal(now=timezone.now())
    healing.heal(now=timezone.now())  # before the fetched row is applied
    assert len(contact_calls(sim)) == 1


def test_a_parent_that_arrives_in_time_is_never_fetched(sim, clock):
    config.update_many({PARENT_WAIT_MINUTES: 30})
    invoice_without_its_customer()
    healing.heal(now=timezone.now())
    enqueue("customers", CONTACT, now=timezone.now())
    drain()
    clock(31 * 60)
    healing.heal(now=timezone.now())
    assert contact_calls(sim) == [] and Invoice.objects.get().customer_ref is not None


def test_a_parent_zoho_does_not_have_is_reported(sim):
    config.update_many({PARENT_WAIT_MINUTES: 0})
    invoice_without_its_customer()
    healing.heal(now=timezone.now())
    assert len(contact_calls(sim)) == 1
    wait = ParentWait.objects.get()
    assert wait.missing_in_zoho_at is not None
    run = reconcile.reconcile_entity("customers", now=timezone.now(), client=ZohoClient())
    missing = run.drift_report["parents_missing_in_zoho"]
    assert missing["count"] == 1 and missing["parents"][0]["parent_id"] == CUSTOMER_ID
    assert missing["parents"][0]["child_tables"] == ["erp_invoice"]


def test_waiting_parents_are_counted_in_status_api_and_tile(sim, api_client, staff_user, client):
    config.update_many({PARENT_WAIT_MINUTES: 0})
    invoice_without_its_customer()
    out = StringIO()
    call_command("tds_status", "--json", stdout=out)
    assert json.loads(out.getvalue())["parents_waiting"] == {"count": 1, "overdue": 1, "missing_in_zoho": 0}
    assert api_client.get("/api/dashboard/queue-stats").json()["parents_waiting"] == 1
    assert api_client.get("/api/dashboard/metrics").json()["parents_waiting"] == 1
    client.force_login(staff_user)
    page = client.get("/dashboard/").content.decode()
    assert "Parents awaited" in page
