"""Stock snapshots in bulk, and Zoho's custom fields and exchange rates landing in the ERP."""

from __future__ import annotations

import pytest

from erp.models import Invoice, StockLevel
from sync.models import SyncRun

from .conftest import drain

pytestmark = pytest.mark.django_db(transaction=True)


def sell(sim, item: dict, quantity: int) -> None:
    """Stock leaves the first location, as an invoice or a shipment moves it: no adjustment, and
    Zoho leaves the item's last_modified_time alone."""
    stored = sim.get("products", item["item_id"])
    locations = stored["locations"]
    place = locations[0]
    for field in ("location_stock_on_hand", "location_available_stock", "location_actual_available_stock"):
        place[field] = place[field] - quantity
    total = sum(loc["location_stock_on_hand"] for loc in locations if loc["location_stock_on_hand"] != "")
    sim.update(
        "products",
        item["item_id"],
        locations=locations,
        stock_on_hand=total,
        available_stock=total,
        last_modified_time=stored["last_modified_time"],
    )


def test_a_stock_pull_of_300_moved_items_takes_at_most_ten_calls(sim, run_pull, settings):
    settings.TDS_PULL_PAGE_SIZE = 200  # Zoho's page
    items = [
        i
        for i in sim.seed("products", 420)
        if i["stock_on_hand"] != "" and i["locations"][0]["location_stock_on_hand"] != ""
    ]
    assert run_pull("stock", "full").status == SyncRun.Status.COMPLETED
    drain()
    moved = items[:300]
    for item in moved:
        sell(sim, item, 1)
    sim.clear_requests()

    run = run_pull("stock", "full")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    assert run.calls <= 10, [r.path for r in sim.api_calls()]
    bulk = [r for r in sim.api_calls() if r.path == "/inventory/v1/itemdetails"]
    assert sum(len(r.params["item_ids"].split(",")) for r in bulk) == 300
    drain()
    for item in moved:
        first = item["locations"][0]
        level = StockLevel.objects.get(zoho_id=f"{item['item_id']}:{first['location_id']}")
        assert level.stock_on_hand == first["location_stock_on_hand"] - 1


def test_custom_fields_and_the_exchange_rate_land_on_the_erp_rows(sim, run_pull):
    region = {"customfield_id": "46000000012845", "api_name": "cf_region", "label": "Region", "value": "North"}
    po = {"customfield_id": "46000000012846", "api_name": "cf_po_ref", "label": "PO", "value": "PO-77"}
    (invoice,) = sim.seed("invoices", 1, custom_fields=[region, po], exchange_rate=1.0875)

    assert run_pull("invoices", "full").status == SyncRun.Status.COMPLETED
    drain()

    stored = Invoice.objects.get(zoho_id=invoice["invoice_id"])
    assert stored.custom_fields == {"cf_region": "North", "cf_po_ref": "PO-77"}
    assert str(stored.exchange_rate) == "1.087500"
