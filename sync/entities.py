"""The eleven entities (SPEC §4), declared once.

The webhook view uses this registry to find the object in a body and its id, pulls and
reconciliation to know which ERP model holds an entity's rows (`erp_model`), and the Zoho client to
know where to fetch it. The handlers name their model themselves (sync/handlers/declarations.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entity:
    slug: str
    list_key: str  # key of the list in a Zoho list response
    single_key: str  # key of the object in a Zoho detail response or webhook envelope
    id_field: str
    api: str  # "books" or "inventory"
    path: str  # REST collection path under /books/v3 or /inventory/v1
    erp_model: str  # "app_label.Model"
    # Zoho filters this list by last_modified_time (zoho/README.md "Lists and incremental sync").
    modified_filter: bool = False
    has_lines: bool = False  # list rows are summaries; lines need the detail endpoint
    contact_type: str = ""  # customers and vendors share Zoho's contacts

    def __str__(self) -> str:
        return self.slug


ENTITIES: dict[str, Entity] = {
    e.slug: e
    for e in [
        Entity("products", "items", "item", "item_id", "inventory", "items", "erp.Product", modified_filter=True),
        Entity(
            "customers",
            "contacts",
            "contact",
            "contact_id",
            "books",
            "contacts",
            "erp.Customer",
            contact_type="customer",
        ),
        Entity(
            "vendors", "contacts", "contact", "contact_id", "books", "contacts", "erp.Vendor", contact_type="vendor"
        ),
        Entity(
            "invoices",
            "invoices",
            "invoice",
            "invoice_id",
            "books",
            "invoices",
            "erp.Invoice",
            modified_filter=True,
            has_lines=True,
        ),
        Entity("bills", "bills", "bill", "bill_id", "books", "bills", "erp.Bill", modified_filter=True, has_lines=True),
        Entity(
            "credit-notes",
            "creditnotes",
            "creditnote",
            "creditnote_id",
            "books",
            "creditnotes",
            "erp.CreditNote",
            has_lines=True,
        ),
        Entity(
            "sales-orders",
            "salesorders",
            "salesorder",
            "salesorder_id",
            "books",
            "salesorders",
            "erp.SalesOrder",
            modified_filter=True,
            has_lines=True,
        ),
        Entity(
            "payments",
            "customerpayments",
            "payment",
            "payment_id",
            "books",
            "customerpayments",
            "erp.Payment",
            has_lines=True,
        ),
        Entity(
            "stock",
            "inventory_adjustments",
            "inventory_adjustment",
            "inventory_adjustment_id",
            "inventory",
            "inventoryadjustments",
            "erp.StockAdjustment",
            has_lines=True,
        ),
        Entity(
            "prices", "pricebooks", "pricebook", "pricebook_id", "books", "pricebooks", "erp.PriceList", has_lines=True
        ),
        Entity("users", "users", "user", "user_id", "books", "users", "erp.ErpUser"),
    ]
}

CONTACT_ENTITIES = {e.contact_type: e for e in ENTITIES.values() if e.contact_type}

# Under `stock` two kinds of object travel: adjustments (documents) and an item's per-location
# snapshot. Their queue object ids carry a prefix so they never collide (SPEC §4).
STOCK_ADJUSTMENT_PREFIX = "adjustment:"
STOCK_ITEM_PREFIX = "item:"


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

    A contact is filed by its `contact_type`, whichever contacts endpoint received it.
    """
    entity = get(slug)
    if entity.slug == "stock":
        return _locate_stock(entity, body)
    obj = _unwrap(body, (entity.single_key,))
    if entity.contact_type:
        entity = CONTACT_ENTITIES.get(str(obj.get("contact_type", "")).lower(), entity)
    return Located(entity, obj, _id(obj.get(entity.id_field)))


def _locate_stock(entity: Entity, body: dict[str, Any]) -> Located:
    obj = _unwrap(body, ("inventory_adjustment", "item"))
    adjustment_id = _id(obj.get("inventory_adjustment_id"))
    if adjustment_id:
        return Located(entity, obj, STOCK_ADJUSTMENT_PREFIX + adjustment_id)
    item_id = _id(obj.get("item_id"))
    return Located(entity, obj, STOCK_ITEM_PREFIX + item_id if item_id else None)
