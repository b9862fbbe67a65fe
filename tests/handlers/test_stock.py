"""Stock: levels only from an item's absolute snapshot, adjustments only as documents."""

from __future__ import annotations

from decimal import Decimal

from erp.models import Product, StockAdjustment, StockLevel
from sync.handlers import ApplyOutcome
from sync.models import AuditTrail, QueueItem
from tests.handlers.conftest import apply, enqueue, sample

ITEM = sample("inventory-item")
ADJUSTMENT = sample("inventory-inventoryadjustment")
ITEM_ID = "4815000000044208"


def snapshot(stamp="2026-11-01T10:00:00+0000", *locations, **fields):
    return {
        "item_id": ITEM_ID,
        "last_modified_time": stamp,
        "locations": [
            {"location_id": loc, "location_name": f"Site {loc}", "location_stock_on_hand": on_hand}
            for loc, on_hand in locations
        ],
        **fields,
    }


def levels():
    return dict(StockLevel.objects.values_list("location_id", "stock_on_hand"))


def test_inventory_item_sample_stores_unknown_stock_as_null_not_zero():
    item = enqueue("stock", ITEM)
    assert item.object_id == f"item:{ITEM_ID}"
    assert apply(item) == [ApplyOutcome.APPLIED]
    level = StockLevel.objects.get()
    assert (level.zoho_id, level.item_id, level.location_id) == (
        f"{ITEM_ID}:460000000038080",
        ITEM_ID,
        "460000000038080",
    )
    assert level.stock_on_hand is None and level.available_stock is None


def test_snapshot_sets_absolute_levels_per_location_and_links_the_product():
    apply(enqueue("products", ITEM))
    apply(enqueue("stock", snapshot("2026-11-01T10:00:00+0000", ("A", 5), ("B", "7.5"))))
    assert levels() == {"A": Decimal("5"), "B": Decimal("7.5")}
    assert StockLevel.objects.filter(item_ref=Product.objects.get()).count() == 2
    apply(enqueue("stock", snapshot("2026-11-02T10:00:00+0000", ("A", 3), ("B", ""))))
    assert levels() == {"A": Decimal("3"), "B": None}


def test_older_snapshot_in_another_offset_is_stale():
    apply(enqueue("stock", snapshot("2026-11-01T10:00:00-0400", ("A", 5))))  # 14:00Z
    older = enqueue("stock", snapshot("2026-11-01T19:00:00+0530", ("A", 99)))  # 13:30Z
    assert apply(older) == [ApplyOutcome.STALE]
    assert levels() == {"A": Decimal("5")}


def test_identical_snapshot_is_unchanged():
    apply(enqueue("stock", snapshot("2026-11-01T10:00:00+0000", ("A", 5), ("B", 1))))
    assert apply(enqueue("stock", snapshot("2026-11-01T10:00:00+0000", ("A", 5), ("B", 1)))) == [ApplyOutcome.UNCHANGED]


def test_adjustment_is_a_document_and_never_changes_stock_levels():
    apply(enqueue("stock", snapshot("2026-11-01T10:00:00+0000", ("460000000038080", 5))))
    item = enqueue("stock", ADJUSTMENT)
    assert item.object_id == "adjustment:4815000000044100"
    assert apply(item) == [ApplyOutcome.APPLIED]
    adjustment = StockAdjustment.objects.get()
    assert (adjustment.zoho_id, adjustment.reason, adjustment.adjustment_type, str(adjustment.date)) == (
        "4815000000044100",
        "Damaged goods",
        "quantity",
        "2015-05-28",
    )
    line = adjustment.lines.get()
    assert (line.item_id, line.location_id, line.quantity_adjusted) == (
        "4815000000044100",
        "460000000038080",
        Decimal("10"),
    )
    assert levels() == {"460000000038080": Decimal("5")}


def test_adjustments_and_snapshots_in_one_batch_each_go_their_way():
    adjustment = enqueue("stock", ADJUSTMENT)
    level = enqueue("stock", snapshot("2026-11-01T10:00:00+0000", ("A", 2)))
    assert apply(adjustment, level) == [ApplyOutcome.APPLIED, ApplyOutcome.APPLIED]
    assert StockAdjustment.objects.count() == 1 and levels() == {"A": Decimal("2")}


def test_product_stock_follows_the_snapshot_only_when_the_snapshot_carries_it():
    apply(enqueue("products", ITEM))
    apply(enqueue("stock", snapshot("2026-11-01T10:00:00+0000", ("A", 5))))
    assert Product.objects.get().stock_on_hand is None
    apply(enqueue("stock", snapshot("2026-11-02T10:00:00+0000", ("A", 6), stock_on_hand=6, available_stock="4")))
    product = Product.objects.get()
    assert (product.stock_on_hand, product.available_stock) == (Decimal("6"), Decimal("4"))


def test_snapshot_audit_names_the_changed_location():
    apply(enqueue("stock", snapshot("2026-11-01T10:00:00+0000", ("A", 5), ("B", 1))))
    change = enqueue("stock", snapshot("2026-11-02T10:00:00+0000", ("A", 4), ("B", 1)))
    apply(change)
    audit = AuditTrail.objects.get(queue_item_id=change.pk)
    assert (audit.object_id, audit.changed_fields) == (f"item:{ITEM_ID}", ["A.stock_on_hand"])


def test_deleted_item_tombstones_its_levels_and_an_older_snapshot_does_not_revive_them():
    apply(enqueue("stock", snapshot("2026-11-01T10:00:00+0000", ("A", 5))))
    delete = enqueue("stock", {"item_id": ITEM_ID}, operation=QueueItem.Operation.DELETE)
    assert apply(delete) == [ApplyOutcome.APPLIED]
    assert StockLevel.objects.get().deleted_at is not None
    assert apply(enqueue("stock", snapshot("2026-11-02T10:00:00+0000", ("A", 9)))) == [ApplyOutcome.STALE]
    assert levels() == {"A": Decimal("5")}


def test_levels_of_items_whose_ids_hold_the_separator_never_overwrite_each_other():
    first = enqueue("stock", {"item_id": "sX:b", "locations": [{"location_id": "c", "location_stock_on_hand": 1}]})
    second = enqueue("stock", {"item_id": "sX", "locations": [{"location_id": "b:c", "location_stock_on_hand": 2}]})
    assert apply(first) == [ApplyOutcome.APPLIED]
    assert apply(second) == [ApplyOutcome.APPLIED]
    assert sorted(StockLevel.objects.values_list("item_id", "location_id", "stock_on_hand")) == [
        ("sX", "b:c", Decimal(2)),
        ("sX:b", "c", Decimal(1)),
    ]
