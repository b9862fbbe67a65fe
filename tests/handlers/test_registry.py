"""apply_batch finds the handler of every entity, and refuses rows it cannot place."""

from __future__ import annotations

import pytest

from sync.entities import ENTITIES
from sync.errors import UnknownEntityError, ValidationFailed
from sync.handlers import apply_batch
from sync.handlers.declarations import HANDLERS
from sync.models import QueueItem
from tests.handlers.conftest import NOW, apply, enqueue


def test_every_registered_entity_has_a_handler():
    assert {h.entity.slug for h in HANDLERS} == set(ENTITIES)


def test_unknown_entity_is_refused():
    item = QueueItem(pk=1, entity="widgets", object_id="1", payload={}, content_hash="x", source="webhook")
    with pytest.raises(UnknownEntityError):
        apply_batch([item], now=NOW)


def test_stock_object_without_its_prefix_is_a_bad_row():
    with pytest.raises(ValidationFailed, match="prefixes"):
        apply(enqueue("stock", {"item_id": "1", "locations": []}, object_id="1"))


def test_rows_of_two_entities_in_one_batch_are_refused():
    first = enqueue("products", {"item_id": "1"})
    second = enqueue("users", {"user_id": "1"})
    with pytest.raises(ValueError, match="one entity"):
        apply(first, second)
