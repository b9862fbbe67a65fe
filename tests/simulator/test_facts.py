"""TDS Core's registry against the simulator's own table of Zoho's list facts.

The registry (sync.entities) is what the pull believes; facts.FACTS is what the simulated Zoho
does, from Zoho's documentation. A registry entry that drifts from it fails here rather than
being mirrored by the fake.
"""

from __future__ import annotations

import pytest

from sync.entities import ENTITIES
from zohosim.facts import FACTS, MODIFIED_FILTER, Sort


@pytest.mark.parametrize("slug", list(ENTITIES))
def test_the_registry_asks_for_a_modified_time_sort_only_where_zoho_honours_it(slug):
    entity = ENTITIES[slug]
    assert entity.modified_sort == (FACTS[entity.path].modified_sort == Sort.HONOURED), slug


@pytest.mark.parametrize("slug", list(ENTITIES))
def test_the_registry_filters_by_modified_time_exactly_where_zoho_does(slug):
    entity = ENTITIES[slug]
    assert entity.modified_filter == ((entity.api, entity.path) in MODIFIED_FILTER), slug


def test_the_modified_time_filter_is_inclusive_to_the_second(zoho_sim, caller):
    invoices = zoho_sim.seed("invoices", 3)
    zoho_sim.advance(60)
    changed = zoho_sim.update("invoices", invoices[0]["invoice_id"], reference_number="x")
    at = changed["last_modified_time"]
    rows = caller.get("/books/v3/invoices", last_modified_time=at).json()["invoices"]
    assert [r["invoice_id"] for r in rows] == [changed["invoice_id"]]


@pytest.mark.parametrize(
    ("sort", "status", "column"),
    [(Sort.HONOURED, 200, "last_modified_time"), (Sort.IGNORED, 200, "created_time"), (Sort.REFUSED, 400, None)],
)
def test_a_modified_time_sort_is_honoured_ignored_or_refused_as_the_simulator_is_told(settings, sort, status, column):
    from zohosim import ZohoSimulator

    from .conftest import Caller

    with ZohoSimulator(sort={"invoices": sort}) as sim:
        sim.seed("invoices", 3)
        answer = Caller(sim).get("/books/v3/invoices", sort_column="last_modified_time", sort_order="A")
    assert answer.status_code == status
    if column:
        assert answer.json()["page_context"]["sort_column"] == column
    else:
        assert answer.json()["code"] == 2
