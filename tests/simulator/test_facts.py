"""What the simulated Zoho's lists do with modified times (zohosim.modules): the filter, the sort.

Whether TDS Core's registry agrees with it is test_registry_matches_simulator.py's business.
"""

from __future__ import annotations

import pytest

from zohosim.modules import Sort


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
