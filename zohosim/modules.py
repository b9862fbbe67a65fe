"""What Zoho's lists do with modified times, module by module: the simulator's own table.

Kept apart from sync.entities on purpose: TDS Core's registry says what it *believes* Zoho
does; this says what the simulated Zoho *does*, so a wrong registry entry fails a test
(tests/simulator/test_facts.py) instead of being mirrored by the fake.

Sources: the `last_modified_time` filter is documented on the list endpoints of invoices, bills
and sales orders (Zoho Books API v3, e.g. https://www.zoho.com/books/api/v3/invoices/#list-invoices)
and Inventory items (https://www.zoho.com/inventory/api/v1/items/#list-all-the-items), and reads
inclusively to the second. `sort_column=last_modified_time` is documented for contacts
(https://www.zoho.com/books/api/v3/contacts/#list-contacts) and Inventory items; not for
invoices, bills, credit notes, sales orders, payments, adjustments, price lists or users, where
Zoho may ignore it (peers' reports: Airbyte, Singer taps) or refuse it. Which of the two it does
there is a per-test choice (`ZohoSimulator(sort=…)`); the default is to ignore it, silently, as
the peers report for undocumented parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Sort(StrEnum):
    HONOURED = "honoured"  # sort_column=last_modified_time orders the list
    IGNORED = "ignored"  # the parameter is dropped: Zoho's default order, 200 OK
    REFUSED = "refused"  # 400 code 2 "Invalid value passed for sort_column"


@dataclass(frozen=True)
class ListFacts:
    default_order: tuple[str, str]  # (sort_column, sort_order) when none is asked for
    report_name: str
    modified_sort: Sort = Sort.IGNORED


# By REST collection (contacts: customers and vendors alike).
FACTS: dict[str, ListFacts] = {
    "items": ListFacts(("name", "A"), "Items", modified_sort=Sort.HONOURED),
    "contacts": ListFacts(("contact_name", "A"), "Contacts", modified_sort=Sort.HONOURED),
    "invoices": ListFacts(("created_time", "D"), "Invoices"),
    "bills": ListFacts(("created_time", "D"), "Bills"),
    "creditnotes": ListFacts(("created_time", "D"), "Credit Notes"),
    "salesorders": ListFacts(("created_time", "D"), "Sales Orders"),
    "customerpayments": ListFacts(("created_time", "D"), "Customer Payments"),
    "inventoryadjustments": ListFacts(("created_time", "D"), "Inventory Adjustments"),
    "pricebooks": ListFacts(("name", "A"), "Price Lists"),
    "users": ListFacts(("name", "A"), "Users"),
}
# (API, collection) lists Zoho filters by `last_modified_time`; elsewhere the parameter is ignored.
# Items: Inventory's list has the filter, Books' has not.
MODIFIED_FILTER = {("inventory", "items"), ("books", "invoices"), ("books", "bills"), ("books", "salesorders")}
# Columns every list sorts by when asked, whatever its default (Zoho's list pages offer them).
ALWAYS_SORTABLE = ("created_time",)
