"""What only PostgreSQL can show: the audit trail is immutable, and concurrent batches serialise per object."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from erp.models import Product
from sync.handlers import ApplyOutcome, apply_batch
from sync.models import AuditTrail, SchemaDrift
from tests.handlers.conftest import NOW, apply, enqueue, sample

pytestmark = pytest.mark.postgres
ITEM = sample("books-item")


@pytest.mark.parametrize("statement", ["UPDATE tds_audit_trail SET entity = 'x'", "DELETE FROM tds_audit_trail"])
def test_audit_rows_cannot_be_updated_or_deleted(statement):
    apply(enqueue("products", ITEM))
    assert AuditTrail.objects.count() == 1
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditTrail.objects.get().entity == "products"


@pytest.mark.django_db(transaction=True)
def test_two_workers_creating_one_new_object_keep_the_newest_version():
    newer = enqueue("products", {**ITEM, "name": "newer", "last_modified_time": "2026-06-10T10:00:00+0000"})
    older = enqueue("products", {**ITEM, "name": "older", "last_modified_time": "2026-06-09T10:00:00+0000"})
    applied_newer = threading.Event()
    outcome: dict[str, ApplyOutcome] = {}

    def worker_a():
        with transaction.atomic():
            apply_batch([newer], now=NOW)
            applied_newer.set()
            # Hold the transaction open while B tries the same, still-uncommitted new object.
            threading.Event().wait(0.5)
        connection.close()

    def worker_b():
        applied_newer.wait(5)
        with transaction.atomic():
            outcome["older"] = apply_batch([older], now=NOW)[older.pk]
        connection.close()

    threads = [threading.Thread(target=worker_a), threading.Thread(target=worker_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert outcome == {"older": ApplyOutcome.STALE}
    assert Product.objects.get().name == "newer"


@pytest.mark.django_db(transaction=True)
def test_two_workers_meeting_the_same_new_field_at_once_make_one_drift_row_counting_both():
    rows = [
        enqueue("products", {**ITEM, "item_id": f"70{n}", "warranty_code": "W", "shelf_life_days": 30})
        for n in range(4)
    ]
    first_wrote = threading.Event()
    errors: list[Exception] = []

    def worker(batch, hold: bool):
        try:
            with transaction.atomic():
                apply_batch(batch, now=NOW)
                if hold:  # keep the new drift rows uncommitted while the other worker writes the same
                    first_wrote.set()
                    threading.Event().wait(0.5)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    a = threading.Thread(target=worker, args=(rows[:2], True))
    b = threading.Thread(target=lambda: (first_wrote.wait(5), worker(rows[2:], False)))
    for t in (a, b):
        t.start()
    for t in (a, b):
        t.join(10)
    assert errors == []
    drift = list(SchemaDrift.objects.order_by("path").values_list("path", "count"))
    assert drift == [("shelf_life_days", 4), ("warranty_code", 4)]
