"""The eleven entities as declarations on the one Handler.

Each header model comes from its entity (sync.entities names it once); only line models are
named here. Columns are the ERP model's own fields, named as Zoho names them; `renames` lists only
where Zoho uses another key (first key present wins).
"""

from __future__ import annotations

from django.apps import apps

from erp import models as erp
from sync import entities
from sync.handlers.apply import Handler, Lines
from sync.handlers.contacts import ContactHandler
from sync.handlers.stock import StockLevelHandler

# `discount` on a Zoho line may be "12.5%"; `discount_amount` is always the amount.
DOCUMENT_LINES = {"discount": ("discount_amount", "discount")}
# Zoho's custom fields come as a list (`custom_fields`, each with its `api_name`) on details and
# as a map (`custom_field_hash`) on some list rows and webhooks (sync.handlers.values.custom_fields).
HEADER_RENAMES = {"custom_fields": ("custom_fields", "custom_field_hash")}


def _handler(slug: str, lines: Lines | None = None) -> Handler:
    return Handler(slug, apps.get_model(entities.get(slug).erp_model), lines=lines, renames=HEADER_RENAMES)


def _contacts(slug: str, *, leaves: str) -> Handler:
    return ContactHandler(slug, apps.get_model(entities.get(slug).erp_model), renames=HEADER_RENAMES, leaves=leaves)


def _stock(slug: str) -> list[Handler]:
    entity = entities.get(slug)
    source = entities.get(entity.snapshots_of)
    return [
        Handler(
            slug,
            apps.get_model(entity.erp_model),
            lines=Lines(erp.StockAdjustmentLine),
            renames=HEADER_RENAMES,
            prefix=entity.document_prefix,
        ),
        StockLevelHandler(
            slug, apps.get_model(entity.snapshot_model), id_field=source.id_field, prefix=entity.snapshot_prefix
        ),
    ]


HANDLERS: list[Handler] = [
    _handler("products"),
    _contacts("customers", leaves="vendors"),
    _contacts("vendors", leaves="customers"),
    _handler("invoices", Lines(erp.InvoiceLine, renames=DOCUMENT_LINES)),
    _handler("bills", Lines(erp.BillLine, renames=DOCUMENT_LINES)),
    _handler("credit-notes", Lines(erp.CreditNoteLine, renames=DOCUMENT_LINES)),
    _handler("sales-orders", Lines(erp.SalesOrderLine, renames=DOCUMENT_LINES)),
    _handler("payments", Lines(erp.PaymentAllocation, keys=("invoices",))),
    *_stock("stock"),
    # Zoho Books returns a price book's items as `pricebook_items`; tolerate `items` as well.
    _handler("prices", Lines(erp.PriceListItem, keys=("pricebook_items", "items"))),
    _handler("users"),
]
