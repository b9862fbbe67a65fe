"""Schema drift on the apply path: a field Zoho sends that nothing reads is recorded once, counted after."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest

from sync.config_keys import SCHEMA_DRIFT_ENABLED
from sync.models import QueueItem, SchemaDrift
from tdscore import config
from tests.handlers.conftest import NOW, apply, enqueue, sample
from zohosim import fabricate

# Each entity and the samples its Zoho objects are recorded in.
SAMPLES = {
    "products": ["books-item", "inventory-item"],
    "customers": ["books-contact"],
    "invoices": ["books-invoice"],
    "bills": ["books-bill"],
    "credit-notes": ["books-creditnote"],
    "sales-orders": ["inventory-salesorder"],
    "payments": ["books-customerpayment"],
    "stock": ["inventory-inventoryadjustment", "inventory-item"],
    "prices": ["pricebook"],
    "users": ["user"],
}


def drift() -> list[tuple[str, str, int]]:
    return list(SchemaDrift.objects.order_by("entity", "path").values_list("entity", "path", "count"))


def invoice(invoice_id: str, minutes: int = 0, **extra) -> dict:
    obj = sample("books-invoice") | {"invoice_id": invoice_id, **extra}
    obj["last_modified_time"] = (NOW - timedelta(hours=1, minutes=-minutes)).strftime("%Y-%m-%dT%H:%M:%S%z")
    return obj


@pytest.mark.parametrize(("slug", "name"), [(slug, name) for slug, names in SAMPLES.items() for name in names])
def test_the_projects_own_zoho_samples_raise_no_drift(slug, name):
    obj = sample(name)
    if slug == "stock" and name == "inventory-item":
        obj = {**obj, "item_id": str(obj["item_id"])}  # an item's stock snapshot, under `item:<id>`
    assert apply(enqueue(slug, obj)) == ["applied"]
    assert drift() == []


def test_the_simulators_objects_raise_no_drift():
    ids = itertools.count(5000)
    made: dict[str, list] = {}
    locations = [fabricate.location(str(i), name, primary) for i, (name, primary) in enumerate(fabricate.LOCATIONS)]
    maker = fabricate.Fabricator(
        random.Random(7),
        lambda: str(next(ids)),
        lambda slug: (made.get(slug) or [None])[0],
        lambda when: when.strftime("%Y-%m-%dT%H:%M:%S%z"),
        locations,
    )
    for slug in fabricate.TEMPLATES:
        obj = maker.make(slug, 1, NOW)
        made.setdefault(slug, []).append(obj)
        apply(enqueue(slug, obj))
    assert QueueItem.objects.count() == len(fabricate.TEMPLATES)
    assert drift() == []


def test_a_new_header_field_is_recorded_once_and_counted_after():
    apply(enqueue("invoices", invoice("1", loyalty_tier="gold")))
    apply(enqueue("invoices", invoice("2", loyalty_tier="silver")), enqueue("invoices", invoice("3", loyalty_tier="")))

    row = SchemaDrift.objects.get()
    assert (row.entity, row.path, row.count, row.example_object_id) == ("invoices", "loyalty_tier", 3, "1")
    assert row.first_seen == NOW and row.acknowledged_at is None


def test_a_new_line_field_is_named_under_the_entitys_line_key():
    obj = invoice("1")
    obj["line_items"] = [obj["line_items"][0] | {"warranty_months": 12}, obj["line_items"][0]]
    apply(enqueue("invoices", obj))
    assert drift() == [("invoices", "line_items[].warranty_months", 1)]


def test_a_payments_line_field_is_named_under_its_own_line_key():
    obj = sample("books-customerpayment")
    obj["invoices"] = [obj["invoices"][0] | {"settled_by": "bank"}]
    apply(enqueue("payments", obj))
    assert drift() == [("payments", "invoices[].settled_by", 1)]


def test_custom_fields_are_known_in_every_shape():
    obj = invoice(
        "1",
        custom_fields=[{"api_name": "cf_region", "value": "North"}],
        custom_field_hash={"cf_region": "North"},
        cf_region="North",
        cf_region_unformatted="North",
    )
    apply(enqueue("invoices", obj))
    assert drift() == []


def test_a_nested_blocks_inner_keys_are_not_followed():
    obj = invoice("1")
    obj["billing_address"] = {**obj["billing_address"], "what3words": "table.lamp.chair"}
    apply(enqueue("invoices", obj))
    assert drift() == []


def test_with_the_switch_off_nothing_is_recorded():
    config.update(SCHEMA_DRIFT_ENABLED, False)
    apply(enqueue("invoices", invoice("1", loyalty_tier="gold")))
    assert SchemaDrift.objects.count() == 0


def test_a_rolled_back_batch_records_nothing():
    good = enqueue("invoices", invoice("1", loyalty_tier="gold"))
    bad = enqueue("invoices", invoice("2", loyalty_tier="gold", date="not a date"))
    with pytest.raises(Exception, match="not a date"):
        apply(good, bad)
    assert SchemaDrift.objects.count() == 0


def test_an_items_stock_snapshot_reports_its_location_fields_and_leaves_the_item_to_products():
    obj = sample("inventory-item") | {"item_id": "501", "shelf_life_days": 30}
    obj["locations"] = [obj["locations"][0] | {"bin_code": "A-3"}]
    apply(enqueue("stock", obj))
    assert drift() == [("stock", "locations[].bin_code", 1)]
