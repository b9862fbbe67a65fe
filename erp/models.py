"""The ERP tables TDS Core writes. Zoho is the source of truth; the rest of the ERP reads.

Every row carries its Zoho id, the Zoho version it holds, the content hash and raw payload as
applied, and a tombstone: deletes are soft so a late, older update cannot bring a row back.
Parents are referenced by Zoho id, with a nullable foreign key filled when the parent exists, so
an invoice never waits for its customer.
"""

from django.db import models


def money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True, **kwargs)


def parent(model: str, **kwargs) -> models.ForeignKey:
    """The ERP row of a parent named by Zoho id in the `<parent>_id` field beside it.

    Named `<parent>_ref` because `<parent>_id` is Zoho's id. NULL until that parent row exists.
    """
    return models.ForeignKey(model, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", **kwargs)


def awaits(parent: str, name: str) -> models.Index:
    """The rows still waiting for their `<parent>`: the parent's apply fills their reference through
    this (sync.parents: `<parent>_ref IS NULL AND <parent>_id <> '' AND <parent>_id = ANY(…)`).
    Partial, so it holds only waiting rows and costs nothing to keep once references are filled."""
    return models.Index(
        fields=[f"{parent}_id"],
        condition=models.Q(**{f"{parent}_ref__isnull": True}) & ~models.Q(**{f"{parent}_id": ""}),
        name=name,
    )


class ZohoRecord(models.Model):
    zoho_id = models.CharField(max_length=100, unique=True)
    zoho_last_modified = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    # Stored from a list row (summary): header fields only, lines as they were.
    is_summary = models.BooleanField(default=False)
    synced_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        label = getattr(self, "name", "") or getattr(self, "number", "") or self.zoho_id
        return f"{label}{' (deleted)' if self.deleted_at else ''}"


class HeaderRecord(ZohoRecord):
    """A Zoho record with its own custom fields (every header model; not a stock snapshot)."""

    # api_name → value, as sync.handlers.values.custom_fields reads them.
    custom_fields = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True


class Product(HeaderRecord):
    name = models.CharField(max_length=255, blank=True)
    sku = models.CharField(max_length=100, blank=True)
    unit = models.CharField(max_length=50, blank=True)
    rate = money()
    purchase_rate = money()
    status = models.CharField(max_length=30, blank=True)
    item_type = models.CharField(max_length=30, blank=True)
    tax_id = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    stock_on_hand = money()
    available_stock = money()


class Contact(HeaderRecord):
    contact_name = models.CharField(max_length=255, blank=True)
    company_name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=30, blank=True)
    currency_code = models.CharField(max_length=10, blank=True)

    class Meta:
        abstract = True


class Customer(Contact):
    outstanding_receivable_amount = money()

    class Meta:
        # Erasing a contact's personal data reaches past the ERP row (stored bodies, the audit trail).
        permissions = [("redact_contact", "Can erase a contact's personal data")]


class Vendor(Contact):
    outstanding_payable_amount = money()


class Document(HeaderRecord):
    date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=30, blank=True)
    currency_code = models.CharField(max_length=10, blank=True)
    # Units of the organisation's base currency per unit of the document's currency.
    exchange_rate = money()
    sub_total = money()
    tax_total = money()
    total = money()
    balance = money()

    class Meta:
        abstract = True


class Line(models.Model):
    line_item_id = models.CharField(max_length=100, blank=True)
    item_id = models.CharField(max_length=100, blank=True)
    item_ref = parent("erp.Product")
    name = models.CharField(max_length=255, blank=True)
    quantity = money()
    rate = money()
    discount = money()
    tax_id = models.CharField(max_length=100, blank=True)
    item_total = money()
    position = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position"]
        indexes = [awaits("item", "%(app_label)s_%(class)s_awaits")]

    def __str__(self) -> str:
        return f"{self.name or self.item_id} × {self.quantity}"


class Invoice(Document):
    invoice_number = models.CharField(max_length=100, blank=True)
    due_date = models.DateField(null=True, blank=True)
    customer_id = models.CharField(max_length=100, blank=True)
    customer_ref = parent("erp.Customer")

    class Meta:
        indexes = [awaits("customer", "erp_invoice_awaits")]


class InvoiceLine(Line):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")


class Bill(Document):
    bill_number = models.CharField(max_length=100, blank=True)
    due_date = models.DateField(null=True, blank=True)
    vendor_id = models.CharField(max_length=100, blank=True)
    vendor_ref = parent("erp.Vendor")

    class Meta:
        indexes = [awaits("vendor", "erp_bill_awaits")]


class BillLine(Line):
    bill = models.ForeignKey(Bill, on_delete=models.CASCADE, related_name="lines")


class CreditNote(Document):
    creditnote_number = models.CharField(max_length=100, blank=True)
    customer_id = models.CharField(max_length=100, blank=True)
    customer_ref = parent("erp.Customer")

    class Meta:
        indexes = [awaits("customer", "erp_creditnote_awaits")]


class CreditNoteLine(Line):
    creditnote = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")


class SalesOrder(Document):
    salesorder_number = models.CharField(max_length=100, blank=True)
    shipment_date = models.DateField(null=True, blank=True)
    customer_id = models.CharField(max_length=100, blank=True)
    customer_ref = parent("erp.Customer")

    class Meta:
        indexes = [awaits("customer", "erp_salesorder_awaits")]


class SalesOrderLine(Line):
    salesorder = models.ForeignKey(SalesOrder, on_delete=models.CASCADE, related_name="lines")


class Payment(HeaderRecord):
    payment_number = models.CharField(max_length=100, blank=True)
    date = models.DateField(null=True, blank=True)
    customer_id = models.CharField(max_length=100, blank=True)
    customer_ref = parent("erp.Customer")
    amount = money()
    unused_amount = money()
    payment_mode = models.CharField(max_length=50, blank=True)
    reference_number = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [awaits("customer", "erp_payment_awaits")]


class PaymentAllocation(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="lines")
    invoice_id = models.CharField(max_length=100, blank=True)
    invoice_ref = parent("erp.Invoice")
    amount_applied = money()
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        indexes = [awaits("invoice", "erp_paymentallocation_awaits")]

    def __str__(self) -> str:
        return f"{self.amount_applied} → invoice {self.invoice_id}"


def stock_level_key(item_id: str, location_id: str) -> str:
    """A level's zoho_id: item and location joined by `:`, each with `%` and `:` percent-escaped.

    Joined plainly, item `sX:b` at location `c` and item `sX` at location `b:c` were one row and
    one level overwrote the other; escaped, no two pairs share a key (and numeric Zoho ids read as
    they are).
    """
    return f"{_escape(item_id)}:{_escape(location_id)}"


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


class StockLevel(ZohoRecord):
    """An item's stock at one location, only ever from an absolute snapshot.

    Identified by the pair (item_id, location_id), unique together; zoho_id is stock_level_key() of
    the pair, long enough for two escaped ids.
    """

    zoho_id = models.CharField(max_length=610, unique=True)
    item_id = models.CharField(max_length=100)
    item_ref = parent("erp.Product")
    location_id = models.CharField(max_length=100)
    location_name = models.CharField(max_length=255, blank=True)
    # NULL is "unknown" (Zoho sends ""), never 0.
    stock_on_hand = money()
    available_stock = money()

    class Meta:
        constraints = [
            # Also the index of stock by item: WHERE item_id = %s.
            models.UniqueConstraint(fields=["item_id", "location_id"], name="erp_stocklevel_item_location"),
        ]
        indexes = [awaits("item", "erp_stocklevel_awaits")]


class StockAdjustment(HeaderRecord):
    """A document: stored, never applied as a delta to StockLevel."""

    date = models.DateField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    adjustment_type = models.CharField(max_length=30, blank=True)


class StockAdjustmentLine(models.Model):
    adjustment = models.ForeignKey(StockAdjustment, on_delete=models.CASCADE, related_name="lines")
    line_item_id = models.CharField(max_length=100, blank=True)
    item_id = models.CharField(max_length=100, blank=True)
    item_ref = parent("erp.Product")
    location_id = models.CharField(max_length=100, blank=True)
    quantity_adjusted = money()
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        indexes = [awaits("item", "erp_stockadjline_awaits")]

    def __str__(self) -> str:
        quantity = "?" if self.quantity_adjusted is None else f"{self.quantity_adjusted:+}"
        return f"{self.item_id} {quantity}"


class PriceList(HeaderRecord):
    name = models.CharField(max_length=255, blank=True)
    currency_code = models.CharField(max_length=10, blank=True)
    pricebook_type = models.CharField(max_length=30, blank=True)
    status = models.CharField(max_length=30, blank=True)


class PriceListItem(models.Model):
    pricelist = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="lines")
    item_id = models.CharField(max_length=100, blank=True)
    item_ref = parent("erp.Product")
    pricebook_rate = money()
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        indexes = [awaits("item", "erp_pricelistitem_awaits")]

    def __str__(self) -> str:
        return f"{self.item_id} @ {self.pricebook_rate}"


class ErpUser(HeaderRecord):
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    role_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=30, blank=True)
    user_type = models.CharField(max_length=30, blank=True)
