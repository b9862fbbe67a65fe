"""A property of the apply path: for any shuffled sequence of versioned and unversioned changes of
one object, applied in any grouping into batches, the stored version never decreases, and the
object ends on the newest versioned change or on an unversioned one that arrived after it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erp.models import Product
from sync.handlers import apply_batch
from tests.handlers.conftest import NOW, enqueue

pytestmark = pytest.mark.django_db

BASE = NOW - timedelta(days=30)


@st.composite
def histories(draw):
    """(name, version offset in minutes or None) in arrival order, and the batch sizes they come in."""
    offsets = draw(st.lists(st.integers(0, 10_000), unique=True, max_size=6))
    unversioned = draw(st.integers(0, 4))
    changes = [(f"v{n}", m) for n, m in enumerate(offsets)] + [(f"u{n}", None) for n in range(unversioned)]
    changes = draw(st.permutations(changes))
    sizes = draw(st.lists(st.integers(1, 3), min_size=len(changes), max_size=len(changes)))
    return changes, sizes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_the_stored_version_never_decreases_and_the_newest_wins(history):
    changes, sizes = history
    with transaction.atomic():
        rows = []
        for name, offset in changes:
            obj = {"item_id": "p1", "name": name}
            if offset is not None:
                obj["last_modified_time"] = (BASE + timedelta(minutes=offset)).isoformat()
            rows.append(enqueue("products", obj))
        highest = None
        start = 0
        for size in sizes:
            batch = rows[start : start + size]
            start += size
            if not batch:
                break
            apply_batch(batch, now=NOW)
            version = Product.objects.get(zoho_id="p1").zoho_last_modified
            assert highest is None or (version is not None and version >= highest)
            highest = version
        if changes:
            product = Product.objects.get(zoho_id="p1")
            versioned = [(offset, i) for i, (_, offset) in enumerate(changes) if offset is not None]
            if versioned:
                newest_offset, newest_at = max(versioned)
                assert product.zoho_last_modified == BASE + timedelta(minutes=newest_offset)
                allowed = {changes[newest_at][0]} | {
                    name for i, (name, offset) in enumerate(changes) if offset is None and i > newest_at
                }
            else:
                assert product.zoho_last_modified is None
                allowed = {name for name, _ in changes}
            assert product.name in allowed
        transaction.set_rollback(True)
