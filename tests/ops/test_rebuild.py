"""`rebuild_erp`: stored payloads mapped again through the apply path, without Zoho."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone

from erp.models import Product, StockLevel
from sync import queue, worker
from sync.models import AuditTrail, QueueItem
from tests import factories

pytestmark = pytest.mark.django_db


def drain() -> None:
    worker.drain(None, worker_id="test-drainer", once=True)


def stored_products(*ids: str) -> None:
    for zoho_id in ids:
        factories.queue_item(object_id=zoho_id)
    drain()


def test_rebuild_maps_stored_payloads_again_after_a_mapping_change(capsys):
    stored_products("1001", "1002")
    # What an older mapping left in a column: the payload it came from still says "Widget 1001".
    Product.objects.filter(zoho_id="1001").update(name="WIDGET-1001 (old mapping)")

    call_command("rebuild_erp", entity="products")

    assert Product.objects.get(zoho_id="1001").name == "Widget 1001"
    audit = AuditTrail.objects.filter(object_id="1001").latest("id")
    assert (audit.source, audit.changed_fields, audit.operation) == ("replay", ["name"], "update")
    assert not AuditTrail.objects.filter(object_id="1002", source="replay").exists()
    assert "products: applied 1, unchanged 1, stale 0" in capsys.readouterr().out


def test_rebuild_leaves_tombstones_alone():
    stored_products("1001")
    queue.enqueue(
        entity="products",
        object_id="1001",
        payload={"item_id": "1001"},
        content_hash="",
        version=None,
        source=QueueItem.Source.WEBHOOK,
        operation=QueueItem.Operation.DELETE,
        now=timezone.now(),
    )
    drain()

    call_command("rebuild_erp", entity="products")

    assert not QueueItem.objects.filter(source=QueueItem.Source.REPLAY).exists()
    assert Product.objects.get(zoho_id="1001").deleted_at is not None


def test_rebuild_puts_stock_snapshots_back_together_from_their_levels():
    snapshot = {
        "item_id": "1001",
        "last_modified_time": "2026-11-01T10:00:00+0000",
        "locations": [
            {"location_id": "L1", "location_name": "Main", "location_stock_on_hand": 5},
            {"location_id": "L2", "location_name": "Annex", "location_stock_on_hand": ""},
        ],
    }
    factories.queue_item("stock", "item:1001", payload=snapshot)
    drain()
    StockLevel.objects.filter(zoho_id="1001:L1").update(location_name="?", stock_on_hand=0)

    call_command("rebuild_erp", entity="stock")

    levels = {lv.location_id: lv for lv in StockLevel.objects.all()}
    assert (levels["L1"].location_name, levels["L1"].stock_on_hand) == ("Main", 5)
    assert levels["L2"].stock_on_hand is None  # "" is unknown, never 0, in a rebuild too
