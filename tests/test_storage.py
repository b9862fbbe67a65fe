"""Large JSON and binary columns are stored lz4-compressed on PostgreSQL (tdscore/storage.py)."""

import pytest
from django.db import connection

from tdscore import storage


def compression(table: str, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s", [table, column]
        )
        return cursor.fetchone()[0]


def test_the_large_columns_are_the_ones_chosen():
    columns = set(storage.lz4_columns())
    assert {
        ("tds_sync_queue", "payload"),
        ("tds_inbox_events", "raw_body"),
        ("tds_audit_trail", "before"),
        ("tds_audit_trail", "after"),
        ("erp_product", "raw"),
        ("erp_invoice", "raw"),
    } <= columns
    assert ("tds_sync_queue", "object_id") not in columns


@pytest.mark.postgres
@pytest.mark.django_db
def test_migrate_leaves_every_large_column_lz4_and_a_later_run_restores_one_that_lost_it():
    assert {compression(table, column) for table, column in storage.lz4_columns()} == {"l"}
    assert storage.use_lz4() == []

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tds_sync_queue ALTER COLUMN payload SET COMPRESSION pglz")
    assert compression("tds_sync_queue", "payload") == "p"
    assert storage.use_lz4() == ["tds_sync_queue.payload"]
    assert compression("tds_sync_queue", "payload") == "l"
