"""The eleven entities as declarations on the one Handler.

Each header model comes from its entity (sync.entities names it once); only line models are
named here. Columns are the ERP model's own fields, named as Zoho names them; `renames` lists only
where Zoho uses another key (first key present wins).
"""

from __future__ import annotations

from django.apps import apps

from erp import models as erp
from sync import entities
from sync.handlers import unread
from sync.handlers.apply import Handler, Lines
from sync.handlers.contacts import ContactHandler
from sync.handlers.stock import StockLevelHandler

# `discount` on a Zoho line may be "12.5%"; `discount_amount` is always the amount.
DOCUMENT_LINES = {"discount": ("discount_amount", "discount")}
# Zoho's custom fields come as a list (`custom_fields`, each with its `api_name`) on details and
# as a map (`custom_field_hash`) on some list rows and webhooks (sync.handlers.values.custom_fields).
HEADER_RENAMES = {"custom_fields": ("custom_fields", "custom_field_hash")}


def _handler(slug: str, fields: frozenset[str], lines: Lines | None = None) -> Handler:
    model = apps.get_model(entities.get(slug).erp_model)
    return Handler(slug, model, lines=lines, renames=HEADER_RENAMES, unread=fields)


def _contacts(slug: str, *, leaves: str) -> Handler:
    model = apps.get_model(entities.get(slug).erp_model)
    return ContactHandler(slug, model, renames=HEADER_RENAMES, leaves=leaves, unread=unread.CONTACT)


def _document(slug: str, line_model: type, fields: frozenset[str], line_fields: frozenset[str]) -> Handler:
    return _handler(slug, fields, Lines(line_model, renames=DOCUMENT_LINES, unread=line_fields))


def _stock(slug: str) -> list[Handler]:
    entity = entities.get(slug)
    source = entities.get(entity.snapshots_of)
    return [
        Handler(
            slug,
            apps.get_model(entity.erp_model),
            lines=Lines(erp.StockAdjustmentLine, unread=unread.ADJUSTMENT_LINE),
            renames=HEADER_RENAMES,
            prefix=entity.document_prefix,
            unread=unread.ADJUSTMENT,
        ),
        StockLevelHandler(
            slug, apps.get_model(entity.snapshot_model), id_field=source.id_field, prefix=entity.snapshot_prefix
        ),
    ]


HANDLERS: list[Handler] = [
    _handler("products", unread.ITEM),
    _contacts("customers", leaves="vendors"),
    _contacts("vendors", leaves="customers"),
    _document("invoices", erp.InvoiceLine, unread.INVOICE, unread.INVOICE_LINE),
    _document("bills", erp.BillLine, unread.BILL, unread.BILL_LINE),
    _document("credit-notes", erp.CreditNoteLine, unread.CREDIT_NOTE, unread.CREDIT_NOTE_LINE),
    _document("sales-orders", erp.SalesOrderLine, unread.SALES_ORDER, unread.SALES_ORDER_LINE),
    _handler("payments", unread.PAYMENT, Lines(erp.PaymentAllocation, keys=("invoices",), unread=unread.PAYMENT_LINE)),
    *_stock("stock"),
    # Zoho Books returns a price book's items as `pricebook_items`; tolerate `items` as well.
    _handler(
        "prices",
        unread.PRICEBOOK,
        Lines(erp.PriceListItem, keys=("pricebook_items", "items"), unread=unread.PRICEBOOK_LINE),
    ),
    _handler("users", unread.USER),
]
