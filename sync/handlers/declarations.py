"""The eleven entities as declarations on the one Handler (SPEC §4).

Columns are the ERP model's own fields, named as Zoho names them; `renames` lists only where Zoho
uses another key (first key present wins).
"""

from __future__ import annotations

from erp import models as erp
from sync.entities import STOCK_ADJUSTMENT_PREFIX, STOCK_ITEM_PREFIX
from sync.handlers.base import Handler, Lines
from sync.handlers.stock import StockLevelHandler

# `discount` on a Zoho line may be "12.5%"; `discount_amount` is always the amount.
DOCUMENT_LINES = {"discount": ("discount_amount", "discount")}

HANDLERS: list[Handler] = [
    Handler("products", erp.Product),
    Handler("customers", erp.Customer),
    Handler("vendors", erp.Vendor),
    Handler("invoices", erp.Invoice, lines=Lines(erp.InvoiceLine, renames=DOCUMENT_LINES)),
    Handler("bills", erp.Bill, lines=Lines(erp.BillLine, renames=DOCUMENT_LINES)),
    Handler("credit-notes", erp.CreditNote, lines=Lines(erp.CreditNoteLine, renames=DOCUMENT_LINES)),
    Handler("sales-orders", erp.SalesOrder, lines=Lines(erp.SalesOrderLine, renames=DOCUMENT_LINES)),
    Handler("payments", erp.Payment, lines=Lines(erp.PaymentAllocation, keys=("invoices",))),
    Handler(
        "stock",
        erp.StockAdjustment,
        lines=Lines(erp.StockAdjustmentLine),
        id_field="inventory_adjustment_id",
        prefix=STOCK_ADJUSTMENT_PREFIX,
    ),
    StockLevelHandler("stock", erp.StockLevel, id_field="item_id", prefix=STOCK_ITEM_PREFIX),
    # Zoho Books returns a price book's items as `pricebook_items`; tolerate `items` as well.
    Handler("prices", erp.PriceList, lines=Lines(erp.PriceListItem, keys=("pricebook_items", "items"))),
    Handler("users", erp.ErpUser),
]
