"""Migrations that rewrite rows keep them: run backwards to the state before, fill rows, run forwards."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("erp", "0003_permissions")]
AFTER = [("erp", "0004_stock_level_item_location")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_stock_levels_keep_their_rows_and_get_keys_that_cannot_collide():
    old = migrate(BEFORE)
    StockLevel = old.get_model("erp", "StockLevel")
    now = timezone.now()
    for item_id, location_id, on_hand in [("1001", "7", 5), ("sX:b", "c", 1), ("a%3Ab", "c", 3)]:
        StockLevel.objects.create(
            zoho_id=f"{item_id}:{location_id}",
            item_id=item_id,
            location_id=location_id,
            stock_on_hand=on_hand,
            synced_at=now,
        )
    try:
        new = migrate(AFTER)
        rows = new.get_model("erp", "StockLevel").objects.order_by("item_id")
        assert list(rows.values_list("zoho_id", "item_id", "location_id", "stock_on_hand")) == [
            ("1001:7", "1001", "7", 5),
            ("a%253Ab:c", "a%3Ab", "c", 3),
            ("sX%3Ab:c", "sX:b", "c", 1),
        ]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
