"""The eleven entities, each declared once.

The webhook view uses this registry to find the object in a body and its id; the handlers take
their ERP model from it (sync.handlers.declarations names only line models); the Zoho client
knows where to fetch an entity; the pull planner knows what Zoho lets a list do with modified
times. The Zoho facts below (`modified_filter`, `modified_sort`, `webhooks`) are our reading of
Zoho's documentation (docs/ZOHO_SETUP.md); the simulator keeps its own table of them
(zohosim.modules) so a wrong entry here is caught by a test rather than mirrored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ZohoApi(StrEnum):
    """The Zoho product whose REST API serves an entity (roots in sync.zoho.client.API_ROOTS)."""

    BOOKS = "books"
    INVENTORY = "inventory"


class Kind(StrEnum):
    RECORD = "record"  # one Zoho module, one ERP model
    # Documents (adjustments) plus per-location snapshots read from another entity's details
    # (`snapshots_of`), filed under one slug with prefixed object ids.
    STOCK = "stock"


@dataclass(frozen=True, kw_only=True)
class Entity:
    slug: str
    list_key: str  # key of the list in a Zoho list response
    single_key: str  # key of the object in a Zoho detail response or webhook envelope
    id_field: str
    api: ZohoApi
    path: str  # REST collection path under /books/v3 or /inventory/v1
    erp_model: str  # "app_label.Model": the one place an entity names its ERP model
    kind: Kind = Kind.RECORD
    # Zoho documents a `last_modified_time` filter on this list (inclusive, to the second).
    modified_filter: bool = False
    # Zoho documents `sort_column=last_modified_time` on this list: only then do we ask for it,
    # since elsewhere Zoho may refuse the parameter (400) or ignore it.
    modified_sort: bool = False
    has_lines: bool = False  # list rows are summaries; lines need the detail endpoint
    contact_type: str = ""  # customers and vendors share Zoho's contacts
    # A Zoho workflow rule on this module can send a webhook (tds_status prints its URL).
    webhooks: bool = True
    # Kind.STOCK: the entity whose details carry `locations[]`, the ERP model of a snapshot, and
    # the object id prefixes of the two kinds of object.
    snapshots_of: str = ""
    snapshot_model: str = ""
    document_prefix: str = ""
    snapshot_prefix: str = ""

    def __str__(self) -> str:
        return self.slug

    @property
    def incremental(self) -> bool:
        """An incremental pull can find what changed: a filter, or a newest-first order to stop at."""
        return self.kind == Kind.RECORD and (self.modified_filter or self.modified_sort)


ENTITIES: dict[str, Entity] = {
    e.slug: e
    for e in [
        Entity(
            slug="products",
            list_key="items",
            single_key="item",
            id_field="item_id",
            api=ZohoApi.INVENTORY,
            path="items",
            erp_model="erp.Product",
            modified_filter=True,
            modified_sort=True,
        ),
        Entity(
            slug="customers",
            list_key="contacts",
            single_key="contact",
            id_field="contact_id",
            api=ZohoApi.BOOKS,
            path="contacts",
            erp_model="erp.Customer",
            modified_sort=True,
            contact_type="customer",
        ),
        Entity(
            slug="vendors",
            list_key="contacts",
            single_key="contact",
            id_field="contact_id",
            api=ZohoApi.BOOKS,
            path="contacts",
            erp_model="erp.Vendor",
            modified_sort=True,
            contact_type="vendor",
        ),
        Entity(
            slug="invoices",
            list_key="invoices",
            single_key="invoice",
            id_field="invoice_id",
            api=ZohoApi.BOOKS,
            path="invoices",
            erp_model="erp.Invoice",
            modified_filter=True,
            has_lines=True,
        ),
        Entity(
            slug="bills",
            list_key="bills",
            single_key="bill",
            id_field="bill_id",
            api=ZohoApi.BOOKS,
            path="bills",
            erp_model="erp.Bill",
            modified_filter=True,
            has_lines=True,
        ),
        Entity(
            slug="credit-notes",
            list_key="creditnotes",
            single_key="creditnote",
            id_field="creditnote_id",
            api=ZohoApi.BOOKS,
            path="creditnotes",
            erp_model="erp.CreditNote",
            has_lines=True,
        ),
        Entity(
            slug="sales-orders",
            list_key="salesorders",
            single_key="salesorder",
            id_field="salesorder_id",
            api=ZohoApi.BOOKS,
            path="salesorders",
            erp_model="erp.SalesOrder",
            modified_filter=True,
            has_lines=True,
        ),
        Entity(
            slug="payments",
            list_key="customerpayments",
            single_key="payment",
            id_field="payment_id",
            api=ZohoApi.BOOKS,
            path="customerpayments",
            erp_model="erp.Payment",
            has_lines=True,
        ),
        Entity(
            slug="stock",
            list_key="inventory_adjustments",
            single_key="inventory_adjustment",
            id_field="inventory_adjustment_id",
            api=ZohoApi.INVENTORY,
            path="inventoryadjustments",
            erp_model="erp.StockAdjustment",
            kind=Kind.STOCK,
            has_lines=True,
            snapshots_of="products",
            snapshot_model="erp.StockLevel",
            document_prefix="adjustment:",
            snapshot_prefix="item:",
        ),
        # Price lists and users have no workflow rules in Zoho Books, so no webhooks: pulls only.
        Entity(
            slug="prices",
            list_key="pricebooks",
            single_key="pricebook",
            id_field="pricebook_id",
            api=ZohoApi.BOOKS,
            path="pricebooks",
            erp_model="erp.PriceList",
            has_lines=True,
            webhooks=False,
        ),
        Entity(
            slug="users",
            list_key="users",
            single_key="user",
            id_field="user_id",
            api=ZohoApi.BOOKS,
            path="users",
            erp_model="erp.ErpUser",
            webhooks=False,
        ),
    ]
}

CONTACT_ENTITIES = {e.contact_type: e for e in ENTITIES.values() if e.contact_type}


class UnknownEntity(LookupError):
    pass


def get(slug: str) -> Entity:
    try:
        return ENTITIES[slug]
    except KeyError:
        raise UnknownEntity(slug) from None


@dataclass(frozen=True)
class Located:
    """Where a payload belongs: the entity it is filed under, the object itself and its id."""

    entity: Entity
    obj: dict[str, Any]
    object_id: str | None  # None when the object lacks its id field


def _id(value: Any) -> str | None:
    # Ids are strings in live data but numbers past 2**53 in Zoho's doc examples: keep them as text.
    if value is None or value == "":
        return None
    return str(value)


def _unwrap(body: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    for key in keys:
        inner = body.get(key)
        if isinstance(inner, dict):
            return inner
    return body


def locate(slug: str, body: dict[str, Any]) -> Located:
    """Unwrap an envelope (`{"code":0,"item":{…}}` or `{"item":{…}}`) and find the object's id.

    A contact is filed by its `contact_type`, whichever contacts endpoint received it. Under a
    stock entity, an adjustment and an item's snapshot get their prefixes.
    """
    entity = get(slug)
    if entity.kind == Kind.STOCK:
        return _locate_stock(entity, body)
    obj = _unwrap(body, (entity.single_key,))
    if entity.contact_type:
        entity = CONTACT_ENTITIES.get(str(obj.get("contact_type", "")).lower(), entity)
    return Located(entity, obj, _id(obj.get(entity.id_field)))


def _locate_stock(entity: Entity, body: dict[str, Any]) -> Located:
    source = get(entity.snapshots_of)
    obj = _unwrap(body, (entity.single_key, source.single_key))
    document_id = _id(obj.get(entity.id_field))
    if document_id:
        return Located(entity, obj, entity.document_prefix + document_id)
    snapshot_id = _id(obj.get(source.id_field))
    return Located(entity, obj, entity.snapshot_prefix + snapshot_id if snapshot_id else None)
