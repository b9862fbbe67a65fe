"""The ERP never goes backwards: whatever arrives, an object keeps the highest version it has seen.

A change without a version applies but leaves the stored version where it was, so an older change
that comes later is still stale. A version that is there but unreadable, or far past the moment it
arrived, is refused as `validation` with the reason, whether it came by webhook or by a pull.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from erp.models import Customer, Product, Vendor
from sync import queue, worker
from sync.config_keys import MAX_VERSION_SKEW_MINUTES
from sync.models import AuditTrail, DeadLetter, QueueItem
from sync.payloads import content_hash, version_of
from tdscore import config
from tests.webhooks.conftest import deliver

pytestmark = pytest.mark.django_db

ELEVEN = datetime(2026, 7, 1, 11, tzinfo=UTC)
TWELVE = datetime(2026, 7, 1, 12, tzinfo=UTC)

# Present but unreadable: each must be refused, never read as "no version".
UNREADABLE = {
    "no offset": "2026-07-01T09:00:00",
    "leap second": "2026-06-30T23:59:60Z",
    "offset +24:00": "2026-07-01T09:00:00+24:00",
    "epoch milliseconds": 1782900000000,
    "epoch seconds": 1782900000,
    "not a date": "not a date",
    "a list": ["2026-07-01T09:00:00Z"],
}


def post(client, **fields):
    assert deliver(client, "products", {"item_id": "z1", **fields}).status_code == 202


def drain():
    worker.drain(None, worker_id="test-drainer", once=True)


def stored() -> Product:
    return Product.objects.get(zoho_id="z1")


def open_dead_letters() -> list[tuple[str, str]]:
    return list(DeadLetter.objects.unresolved().order_by("pk").values_list("reason", "error"))


def test_a_change_without_a_version_never_lets_an_older_one_win(client):
    post(client, name="v2", last_modified_time="2026-07-01T11:00:00Z")
    drain()
    post(client, name="v2 again, no version")
    drain()
    post(client, name="v1 older", last_modified_time="2026-07-01T10:00:00Z")
    drain()
    product = stored()
    assert (product.name, product.zoho_last_modified) == ("v2 again, no version", ELEVEN)
    last = QueueItem.objects.order_by("pk").last()
    assert (last.status, last.skip_reason) == (QueueItem.Status.SKIPPED, QueueItem.SkipReason.STALE)


def test_the_same_three_waiting_together_end_on_the_newest(client):
    post(client, name="v2", last_modified_time="2026-07-01T11:00:00Z")
    post(client, name="no version")
    post(client, name="v1 older", last_modified_time="2026-07-01T10:00:00Z")
    drain()
    assert (stored().name, stored().zoho_last_modified) == ("v2", ELEVEN)


@pytest.mark.parametrize("value", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_version_from_a_webhook_is_dead_lettered_with_the_reason(client, value):
    post(client, name="at twelve", last_modified_time="2026-07-01T12:00:00Z")
    drain()
    post(client, name="unreadable", last_modified_time=value)
    drain()
    assert (stored().name, stored().zoho_last_modified) == ("at twelve", TWELVE)
    [(reason, error)] = open_dead_letters()
    assert reason == DeadLetter.Reason.VALIDATION
    assert error.startswith("products: last_modified_time ") and repr(value)[:20] in error


def pulled(obj: dict, *, now: datetime) -> QueueItem:
    """A queue row as a pull makes it: the payload as listed, the version it could read."""
    return queue.enqueue(
        entity="products",
        object_id=obj["item_id"],
        payload=obj,
        content_hash=content_hash(obj),
        version=version_of(obj),
        source=QueueItem.Source.PULL,
        now=now,
    )


@pytest.mark.parametrize("value", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_version_on_any_other_path_is_refused_by_the_apply(value):
    now = timezone.now()
    pulled({"item_id": "z1", "name": "at twelve", "last_modified_time": "2026-07-01T12:00:00Z"}, now=now)
    drain()
    row = pulled({"item_id": "z1", "name": "unreadable", "last_modified_time": value}, now=now)
    drain()
    assert (stored().name, stored().zoho_last_modified) == ("at twelve", TWELVE)
    row.refresh_from_db()
    assert row.status == QueueItem.Status.DEAD_LETTER
    [(reason, error)] = open_dead_letters()
    assert reason == DeadLetter.Reason.VALIDATION and "last_modified_time" in error


def test_a_far_future_version_is_refused_and_never_pins_the_object(client):
    post(client, name="from the future", last_modified_time="2100-01-01T00:00:00Z")
    drain()
    post(client, name="a real change", last_modified_time="2026-07-02T09:00:00Z")
    drain()
    assert (stored().name, stored().zoho_last_modified) == ("a real change", datetime(2026, 7, 2, 9, tzinfo=UTC))
    [(reason, error)] = open_dead_letters()
    assert reason == DeadLetter.Reason.VALIDATION
    assert "2100-01-01T00:00:00+00:00 is later than" in error and "it would freeze the object" in error


def test_a_far_future_version_from_a_pull_is_refused_by_the_apply():
    now = timezone.now()
    pulled({"item_id": "z1", "name": "from the future", "last_modified_time": "2100-01-01T00:00:00Z"}, now=now)
    pulled({"item_id": "z1", "name": "a real change", "last_modified_time": "2026-07-02T09:00:00Z"}, now=now)
    drain()
    assert stored().name == "a real change"
    [(reason, error)] = open_dead_letters()
    assert reason == DeadLetter.Reason.VALIDATION and "would freeze the object" in error


def test_the_skew_allowed_is_configurable(client):
    config.update(MAX_VERSION_SKEW_MINUTES, 60)
    ahead = (timezone.now().replace(microsecond=0) + (ELEVEN - datetime(2026, 7, 1, 9, tzinfo=UTC))).isoformat()
    post(client, name="two hours ahead", last_modified_time=ahead)
    drain()
    assert not Product.objects.exists()
    assert open_dead_letters()[0][0] == DeadLetter.Reason.VALIDATION


def bad_invoice(client, stamp: str, **fields):
    body = {"invoice_id": "i1", "line_items": "not a list", "last_modified_time": stamp, **fields}
    assert deliver(client, "invoices", body).status_code == 202


def good_invoice(client, stamp: str):
    body = {"invoice_id": "i1", "invoice_number": f"INV {stamp}", "line_items": [], "last_modified_time": stamp}
    assert deliver(client, "invoices", body).status_code == 202


def test_the_apply_that_overtakes_a_dead_letter_resolves_it_as_superseded(client):
    bad_invoice(client, "2026-07-01T10:00:00Z")
    drain()
    bad_invoice(client, "2026-07-01T13:00:00Z", reference_number="later, and still bad")
    drain()
    assert DeadLetter.objects.unresolved().count() == 2
    good_invoice(client, "2026-07-01T11:00:00Z")
    drain()
    older, newer = DeadLetter.objects.order_by("pk")
    assert (older.resolution, older.resolved_by) == (DeadLetter.Resolution.SUPERSEDED, "sync")
    assert newer.resolved_at is None, "a dead letter newer than what is stored still needs a hand"
    good_invoice(client, "2026-07-01T13:00:00Z")  # the same version: it has caught up
    drain()
    newer.refresh_from_db()
    assert newer.resolution == DeadLetter.Resolution.SUPERSEDED


def contact(client, entity: str, contact_type: str, stamp: str):
    body = {"contact_id": "c1", "contact_name": f"{contact_type} at {stamp}", "contact_type": contact_type}
    assert deliver(client, entity, {**body, "last_modified_time": stamp}).status_code == 202
    drain()


def live(model) -> bool:
    return model.objects.filter(zoho_id="c1", deleted_at__isnull=True).exists()


def test_a_contact_filed_as_a_vendor_leaves_the_customers_and_back(client):
    contact(client, "customers", "customer", "2026-07-01T10:00:00Z")
    assert live(Customer) and not live(Vendor)
    contact(client, "vendors", "vendor", "2026-07-01T11:00:00Z")
    assert (live(Customer), live(Vendor)) == (False, True)
    left = AuditTrail.objects.get(entity="customers", operation=AuditTrail.Operation.DELETE)
    assert (left.object_id, left.version, left.changed_fields) == ("c1", ELEVEN, ["deleted_at"])
    contact(client, "customers", "customer", "2026-07-01T10:30:00Z")  # late and older than the move
    assert (live(Customer), live(Vendor)) == (False, True)
    contact(client, "customers", "customer", "2026-07-01T12:00:00Z")  # filed back as a customer
    assert (live(Customer), live(Vendor)) == (True, False)
    assert AuditTrail.objects.filter(entity="vendors", operation=AuditTrail.Operation.DELETE).count() == 1
