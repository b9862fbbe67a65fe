"""The shared apply rules, on products (the entity drained first)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erp.models import Product
from sync.config_keys import MAX_VERSION_SKEW_MINUTES
from sync.errors import ValidationFailed
from sync.handlers import ApplyOutcome
from sync.models import AuditTrail, QueueItem
from tdscore import config
from tests.handlers.conftest import NOW, apply, enqueue, sample

ITEM = sample("books-item")
ITEM_ID = ITEM["item_id"]


def version(obj, stamp, **fields):
    return {**obj, "last_modified_time": stamp, **fields}


def test_sample_item_lands_with_decimals_and_string_fields():
    assert apply(enqueue("products", ITEM)) == [ApplyOutcome.APPLIED]
    product = Product.objects.get(zoho_id=ITEM_ID)
    assert (product.name, product.unit, product.status, product.item_type) == (
        "Software License",
        "license",
        "active",
        "sales",
    )
    assert product.rate == Decimal("299") and product.purchase_rate == Decimal("0")
    assert product.sku == "" and product.tax_id == ""
    assert product.stock_on_hand is None  # not in a Books item: unknown, not 0
    assert product.raw == ITEM and product.deleted_at is None and product.synced_at == NOW


def test_inventory_item_with_numeric_ids_stores_them_as_text():
    obj = sample("inventory-item")
    apply(enqueue("products", obj))
    product = Product.objects.get()
    assert product.zoho_id == "4815000000044208"
    assert product.tax_id == "4815000000044043"


def test_a_number_beyond_64_bits_in_a_payload_is_stored_exactly():
    obj = {**ITEM, "ean": 123456789012345678901234567890}
    assert apply(enqueue("products", obj)) == [ApplyOutcome.APPLIED]
    product = Product.objects.get(zoho_id=ITEM_ID)
    assert product.raw["ean"] == 123456789012345678901234567890
    assert AuditTrail.objects.get(object_id=ITEM_ID).after["name"] == "Software License"


def test_raw_is_the_object_whether_or_not_its_queue_row_kept_an_envelope():
    # Ingest queues the bare object (on PostgreSQL `raw` is then copied from the queue row inside
    # the database); a payload still in its envelope must store the object, not the envelope.
    other = {**ITEM, "item_id": "9001", "name": "Other"}
    bare = enqueue("products", ITEM)
    wrapped = enqueue("products", {"code": 0, "message": "success", "item": other}, object_id="9001")
    wrapped.payload = {"code": 0, "message": "success", "item": other}
    wrapped.save(update_fields=["payload"])
    assert apply(bare, wrapped) == [ApplyOutcome.APPLIED, ApplyOutcome.APPLIED]
    assert Product.objects.get(zoho_id=ITEM_ID).raw == ITEM
    assert Product.objects.get(zoho_id="9001").raw == other


def test_newer_version_in_another_offset_wins_over_older_arriving_later():
    # 09:45-04:00 is 13:45Z; 20:00+05:30 is 14:30Z, later although its wall clock reads earlier in UTC terms.
    newer = enqueue("products", version(ITEM, "2026-06-09T20:00:00+0530", name="New"))
    assert apply(newer) == [ApplyOutcome.APPLIED]
    older = enqueue("products", version(ITEM, "2026-06-09T09:45:41-0400", name="Old"))
    assert apply(older) == [ApplyOutcome.STALE]
    assert Product.objects.get().name == "New"


def test_same_instant_in_two_offsets_with_other_content_is_applied():
    apply(enqueue("products", version(ITEM, "2026-06-09T09:45:41-0400", name="A")))
    same_instant = enqueue("products", version(ITEM, "2026-06-09T19:15:41+0530", name="B"))
    assert apply(same_instant) == [ApplyOutcome.APPLIED]
    assert Product.objects.get().name == "B"


def test_versions_of_one_object_in_one_batch_end_with_the_newest_and_older_stale():
    newer = enqueue("products", version(ITEM, "2026-06-09T10:00:00-0400", name="v2"))
    older = enqueue("products", version(ITEM, "2026-06-09T19:00:00+0530", name="v1"))  # 13:30Z < 14:00Z
    assert apply(newer, older) == [ApplyOutcome.APPLIED, ApplyOutcome.STALE]
    assert Product.objects.get().name == "v2"
    assert AuditTrail.objects.filter(queue_item_id=newer.pk).count() == 1
    assert not AuditTrail.objects.filter(queue_item_id=older.pk).exists()


def test_identical_content_is_unchanged_and_not_audited():
    apply(enqueue("products", ITEM))
    again = enqueue("products", dict(ITEM))
    assert apply(again) == [ApplyOutcome.UNCHANGED]
    assert AuditTrail.objects.count() == 1


def test_rows_without_version_are_never_stale_and_apply_in_arrival_order():
    apply(enqueue("products", ITEM))
    first = enqueue("products", {"item_id": ITEM_ID, "name": "first"})
    second = enqueue("products", {"item_id": ITEM_ID, "name": "second"})
    assert (first.version, second.version) == (None, None)
    assert apply(first, second) == [ApplyOutcome.APPLIED, ApplyOutcome.APPLIED]
    assert Product.objects.get().name == "second"


def test_fields_left_out_of_a_payload_keep_their_stored_value():
    apply(enqueue("products", ITEM))
    apply(enqueue("products", version({"item_id": ITEM_ID, "rate": "12.50"}, "2026-06-10T00:00:00+0000")))
    product = Product.objects.get()
    assert product.rate == Decimal("12.50") and product.name == "Software License"


def test_empty_string_money_is_null_and_string_money_is_decimal():
    apply(enqueue("products", {**ITEM, "rate": "", "purchase_rate": "1,234.5"}))
    product = Product.objects.get()
    assert product.rate is None
    assert product.purchase_rate == Decimal("1234.5")


def test_audit_row_records_before_after_and_changed_fields():
    apply(enqueue("products", ITEM))
    change = enqueue("products", version(ITEM, "2026-06-10T09:00:00-0400", rate=300, status="inactive"))
    apply(change)
    audit = AuditTrail.objects.get(queue_item_id=change.pk)
    assert audit.operation == AuditTrail.Operation.UPDATE
    assert audit.changed_fields == ["rate", "status"]
    assert (audit.before["rate"], audit.after["rate"]) == ("299", "300")
    assert audit.version == change.version and audit.source == QueueItem.Source.WEBHOOK
    assert (audit.entity, audit.object_id) == ("products", ITEM_ID)
    first = AuditTrail.objects.get(operation=AuditTrail.Operation.CREATE)
    assert first.before is None and "name" in first.changed_fields


def test_delete_tombstones_and_keeps_the_row():
    apply(enqueue("products", ITEM))
    delete = enqueue("products", {"item_id": ITEM_ID}, operation=QueueItem.Operation.DELETE)
    assert apply(delete) == [ApplyOutcome.APPLIED]
    product = Product.objects.get()
    assert product.deleted_at == NOW and product.name == "Software License"
    audit = AuditTrail.objects.get(queue_item_id=delete.pk)
    assert audit.operation == AuditTrail.Operation.DELETE and audit.changed_fields == ["deleted_at"]


def test_late_older_update_does_not_revive_a_tombstone():
    apply(enqueue("products", ITEM))
    apply(enqueue("products", {"item_id": ITEM_ID}, operation=QueueItem.Operation.DELETE))
    late = enqueue("products", version(ITEM, "2026-06-09T10:00:00-0400", name="late"))
    assert apply(late) == [ApplyOutcome.STALE]
    assert Product.objects.get().deleted_at == NOW


def test_update_without_version_does_not_revive_a_tombstone():
    apply(enqueue("products", {"item_id": ITEM_ID}, operation=QueueItem.Operation.DELETE))
    assert apply(enqueue("products", {"item_id": ITEM_ID, "name": "unversioned"})) == [ApplyOutcome.STALE]


def test_strictly_newer_upsert_revives_a_tombstone():
    # Documented choice: Zoho re-creating (or restoring) the object after the delete brings the row back.
    apply(enqueue("products", ITEM))
    apply(enqueue("products", {"item_id": ITEM_ID}, operation=QueueItem.Operation.DELETE))
    newer = enqueue("products", version(ITEM, "2026-11-23T07:00:00+0000", name="back"))
    assert apply(newer) == [ApplyOutcome.APPLIED]
    product = Product.objects.get()
    assert product.deleted_at is None and product.name == "back"


def test_delete_of_an_unknown_object_keeps_a_tombstone_so_an_older_create_stays_out():
    apply(enqueue("products", {"item_id": ITEM_ID}, operation=QueueItem.Operation.DELETE))
    assert apply(enqueue("products", ITEM)) == [ApplyOutcome.STALE]
    assert Product.objects.get().deleted_at == NOW


def test_repeated_delete_is_unchanged():
    apply(enqueue("products", {"item_id": ITEM_ID}, operation=QueueItem.Operation.DELETE))
    again = enqueue("products", {"item_id": ITEM_ID, "x": 1}, operation=QueueItem.Operation.DELETE)
    assert apply(again) == [ApplyOutcome.UNCHANGED]


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"name": "no id"}, "item_id missing"),
        ({**ITEM, "rate": "twelve"}, "not a number"),
        ({**ITEM, "rate": {"amount": 1}}, "not a number"),
        ({**ITEM, "rate": True}, "not a number"),
        ({**ITEM, "name": ["a"]}, "not text"),
        ({**ITEM, "rate": "1e15"}, "out of range"),
        ({**ITEM, "tax_id": "9" * 101}, "id longer than 100"),
    ],
)
def test_bad_payload_fails_the_batch(payload, message):
    good = enqueue("products", version(ITEM, ITEM["last_modified_time"], item_id="other"), object_id="other")
    bad = enqueue("products", payload, object_id=ITEM_ID)
    with pytest.raises(ValidationFailed, match=message):
        apply(good, bad)
    assert not Product.objects.exists() and not AuditTrail.objects.exists()


def test_batch_of_many_products_applies_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    items = [enqueue("products", {**ITEM, "item_id": str(n), "name": f"P{n}"}) for n in range(50)]
    config.get(MAX_VERSION_SKEW_MINUTES)  # the configuration is read once a second per process, not per batch
    # The seventh: the open dead letters of the objects written, which the batch may have overtaken;
    # the eighth: the rows waiting for these products (sync.parents), one read whatever the batch.
    with django_assert_max_num_queries(8):
        assert set(apply(*items)) == {ApplyOutcome.APPLIED}
    assert Product.objects.count() == 50 and AuditTrail.objects.count() == 50
