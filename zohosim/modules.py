"""Zoho's modules as the simulated Zoho serves them: one entry per REST collection, read from Zoho's
API documentation and the recorded samples (zohosim/samples/), never from TDS Core.

TDS Core's registry (sync.entities) says what TDS Core *believes* about each module; this table
says what the simulated Zoho *does*. tests/simulator/test_registry_matches_simulator.py holds one
against the other, so a wrong path, key, id field or filter on either side fails a test instead of
being copied by the fake.

Paths, keys and id fields: each module's page in the Zoho Books API v3 documentation
(https://www.zoho.com/books/api/v3/, e.g. /customer-payments/: GET /customerpayments answers
`customerpayments`, one payment answers `payment`; /pricelists/: GET /pricebooks) and the Zoho
Inventory API v1 documentation (https://www.zoho.com/inventory/api/v1/, e.g. /inventoryadjustments/:
`inventory_adjustments`, `inventory_adjustment`, `inventory_adjustment_id`).

Modified times: the `last_modified_time` filter is documented on the list endpoints of invoices,
bills and sales orders (e.g. https://www.zoho.com/books/api/v3/invoices/#list-invoices) and of
Inventory items (https://www.zoho.com/inventory/api/v1/items/#list-all-the-items), and reads
inclusively to the second; Books' item list has no such filter. `sort_column=last_modified_time`
is documented for contacts (https://www.zoho.com/books/api/v3/contacts/#list-contacts) and
Inventory items; not for invoices, bills, credit notes, sales orders, payments, adjustments, price
lists or users, where Zoho may ignore it (as Airbyte's and Singer's Zoho connectors report) or
refuse it. Which of the two it does there is a per-test choice (`ZohoSimulator(sort=…)`); the
default is to ignore it, silently, as those connectors report for undocumented parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Api(StrEnum):
    BOOKS = "books"
    INVENTORY = "inventory"

    @property
    def prefix(self) -> str:
        """The API's base path: every module is served under it."""
        return "/books/v3/" if self is Api.BOOKS else "/inventory/v1/"


class Filter(StrEnum):
    """List parameters a module's list honours (others are ignored, as Zoho ignores them)."""

    LAST_MODIFIED_TIME = "last_modified_time"  # rows modified at or after this time
    CONTACT_TYPE = "contact_type"  # customers or vendors only


class Sort(StrEnum):
    HONOURED = "honoured"  # sort_column=last_modified_time orders the list
    IGNORED = "ignored"  # the parameter is dropped: Zoho's default order, 200 OK
    REFUSED = "refused"  # 400 code 2 "Invalid value passed for sort_column"


@dataclass(frozen=True, kw_only=True)
class Module:
    api: Api  # the API whose documentation describes the module; its filters hold there only
    path: str  # the REST collection under the API's prefix
    list_key: str  # key of the rows in a list answer
    single_key: str  # key of the record in a detail answer (and in a workflow webhook's body)
    id_field: str
    noun: str  # how Zoho's messages name a record: "Credit Note does not exist."
    report_name: str  # page_context.report_name of a list
    default_order: tuple[str, str]  # (sort_column, sort_order) when none is asked for
    filters: frozenset[Filter] = frozenset()
    modified_sort: Sort = Sort.IGNORED

    @property
    def url(self) -> str:
        """The list's URL path, e.g. /books/v3/invoices."""
        return self.api.prefix + self.path


NEWEST_FIRST = ("created_time", "D")
BY_NAME = ("name", "A")

# By REST collection. Each module is served under both APIs' prefixes, as Zoho's shared
# organisation data is (an item is the same record in Books and Inventory).
MODULES: dict[str, Module] = {
    m.path: m
    for m in [
        Module(
            api=Api.INVENTORY, path="items", list_key="items", single_key="item", id_field="item_id",
            noun="Item", report_name="Items", default_order=BY_NAME,
            filters=frozenset({Filter.LAST_MODIFIED_TIME}), modified_sort=Sort.HONOURED,
        ),
        Module(
            api=Api.BOOKS, path="contacts", list_key="contacts", single_key="contact", id_field="contact_id",
            noun="Contact", report_name="Contacts", default_order=("contact_name", "A"),
            filters=frozenset({Filter.CONTACT_TYPE}), modified_sort=Sort.HONOURED,
        ),
        Module(
            api=Api.BOOKS, path="invoices", list_key="invoices", single_key="invoice", id_field="invoice_id",
            noun="Invoice", report_name="Invoices", default_order=NEWEST_FIRST,
            filters=frozenset({Filter.LAST_MODIFIED_TIME}),
        ),
        Module(
            api=Api.BOOKS, path="bills", list_key="bills", single_key="bill", id_field="bill_id",
            noun="Bill", report_name="Bills", default_order=NEWEST_FIRST,
            filters=frozenset({Filter.LAST_MODIFIED_TIME}),
        ),
        Module(
            api=Api.BOOKS, path="creditnotes", list_key="creditnotes", single_key="creditnote",
            id_field="creditnote_id", noun="Credit Note", report_name="Credit Notes", default_order=NEWEST_FIRST,
        ),
        Module(
            api=Api.BOOKS, path="salesorders", list_key="salesorders", single_key="salesorder",
            id_field="salesorder_id", noun="Sales Order", report_name="Sales Orders", default_order=NEWEST_FIRST,
            filters=frozenset({Filter.LAST_MODIFIED_TIME}),
        ),
        Module(
            api=Api.BOOKS, path="customerpayments", list_key="customerpayments", single_key="payment",
            id_field="payment_id", noun="Payment", report_name="Customer Payments", default_order=NEWEST_FIRST,
        ),
        Module(
            api=Api.INVENTORY, path="inventoryadjustments", list_key="inventory_adjustments",
            single_key="inventory_adjustment", id_field="inventory_adjustment_id", noun="Inventory Adjustment",
            report_name="Inventory Adjustments", default_order=NEWEST_FIRST,
        ),
        Module(
            api=Api.BOOKS, path="pricebooks", list_key="pricebooks", single_key="pricebook", id_field="pricebook_id",
            noun="Price List", report_name="Price Lists", default_order=BY_NAME,
        ),
        Module(
            api=Api.BOOKS, path="users", list_key="users", single_key="user", id_field="user_id",
            noun="User", report_name="Users", default_order=BY_NAME,
        ),
    ]
}  # fmt: skip
# Columns every list sorts by when asked, whatever its default (Zoho's list pages offer them).
ALWAYS_SORTABLE = ("created_time",)
