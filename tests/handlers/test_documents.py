"""Contacts, documents with lines, payments, price lists, users: every Zoho sample lands its fields."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from erp.models import (
    Bill,
    BillLine,
    CreditNote,
    Customer,
    ErpUser,
    Invoice,
    InvoiceLine,
    Payment,
    PriceList,
    Product,
    SalesOrder,
    Vendor,
)
from sync.errors import ValidationFailed
from sync.handlers import ApplyOutcome
from sync.models import AuditTrail
from tests.handlers.conftest import apply, enqueue, sample

INVOICE = sample("books-invoice")
CONTACT = sample("books-contact")


def invoice_version(stamp, **fields):
    return {**INVOICE, "last_modified_time": stamp, **fields}


def line(n, **fields):
    return {"line_item_id": f"L{n}", "item_id": "", "name": f"line {n}", "quantity": n, "rate": "10.00", **fields}


def test_contact_sample_is_a_customer():
    assert apply(enqueue("customers", CONTACT)) == [ApplyOutcome.APPLIED]
    customer = Customer.objects.get()
    assert (customer.zoho_id, customer.contact_name, customer.currency_code, customer.status) == (
        "260815000000097001",
        "Acme Corp",
        "USD",
        "active",
    )
    assert customer.outstanding_receivable_amount == Decimal("0")
    assert not Vendor.objects.exists()


def test_vendor_contact_is_filed_as_vendor():
    vendor = {**CONTACT, "contact_id": "V1", "contact_type": "vendor", "outstanding_payable_amount": "42.10"}
    item = enqueue("customers", vendor)  # received on the customers endpoint; ingest files it by contact_type
    assert item.entity == "vendors"
    apply(item)
    assert Vendor.objects.get().outstanding_payable_amount == Decimal("42.10")
    assert not Customer.objects.exists()


def test_invoice_sample_lands_header_lines_and_product_reference():
    apply(enqueue("products", sample("books-item")))
    assert apply(enqueue("invoices", INVOICE)) == [ApplyOutcome.APPLIED]
    invoice = Invoice.objects.get()
    assert (invoice.invoice_number, invoice.date, invoice.due_date, invoice.status) == (
        "INV-000001",
        date(2026, 6, 9),
        date(2026, 7, 9),
        "paid",
    )
    assert (invoice.sub_total, invoice.total, invoice.balance) == (Decimal("598"), Decimal("598"), Decimal("0"))
    (only,) = invoice.lines.all()
    assert (only.line_item_id, only.name, only.quantity, only.rate, only.item_total) == (
        "260815000000103006",
        "Software License",
        Decimal("2"),
        Decimal("299"),
        Decimal("598"),
    )
    assert only.item_ref == Product.objects.get()


def test_missing_customer_leaves_reference_null_and_a_later_apply_keeps_it():
    # The parent's apply fills it (tests/handlers/test_parents_first.py); a later version keeps it.
    apply(enqueue("invoices", INVOICE))
    assert Invoice.objects.get().customer_ref is None
    apply(enqueue("customers", CONTACT))
    apply(enqueue("invoices", invoice_version("2026-06-10T09:00:00-0400", status="void")))
    assert Invoice.objects.get().customer_ref == Customer.objects.get()


def test_new_detail_replaces_lines():
    apply(enqueue("invoices", invoice_version("2026-06-10T09:00:00-0400", line_items=[line(1), line(2)])))
    apply(enqueue("invoices", invoice_version("2026-06-11T09:00:00-0400", line_items=[line(3)])))
    assert list(InvoiceLine.objects.values_list("line_item_id", "position")) == [("L3", 0)]


def test_summary_never_overrides_a_detail_of_the_same_version_nor_its_lines():
    apply(enqueue("invoices", INVOICE))
    summary = {k: v for k, v in INVOICE.items() if k != "line_items"} | {"status": "overdue"}
    assert apply(enqueue("invoices", summary, is_summary=True)) == [ApplyOutcome.SUMMARY]
    invoice = Invoice.objects.get()
    assert invoice.status == "paid" and not invoice.is_summary
    assert invoice.lines.count() == 1


def test_summary_carrying_lines_still_leaves_stored_lines_alone():
    apply(enqueue("invoices", INVOICE))
    summary = invoice_version("2026-06-10T00:00:00-0400", status="void", line_items=[line(9)])
    assert apply(enqueue("invoices", summary, is_summary=True)) == [ApplyOutcome.APPLIED]
    assert InvoiceLine.objects.get().line_item_id == "260815000000103006"


def test_newer_summary_updates_header_and_leaves_lines_alone():
    apply(enqueue("invoices", INVOICE))
    summary = {
        "invoice_id": INVOICE["invoice_id"],
        "status": "void",
        "total": 0,
        "last_modified_time": "2026-06-10T00:00:00-0400",
    }
    assert apply(enqueue("invoices", summary, is_summary=True)) == [ApplyOutcome.APPLIED]
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.total, invoice.invoice_number) == ("void", Decimal("0"), "INV-000001")
    assert invoice.is_summary
    assert invoice.lines.get().line_item_id == "260815000000103006"


def test_detail_after_summary_of_the_same_version_replaces_it_with_lines():
    summary = {k: v for k, v in INVOICE.items() if k != "line_items"}
    apply(enqueue("invoices", summary, is_summary=True))
    assert apply(enqueue("invoices", INVOICE)) == [ApplyOutcome.APPLIED]
    invoice = Invoice.objects.get()
    assert not invoice.is_summary and invoice.lines.count() == 1


def test_older_detail_then_newer_summary_in_one_batch_keeps_both():
    detail = enqueue("invoices", invoice_version("2026-06-10T09:00:00-0400", line_items=[line(1)]))
    summary = enqueue(
        "invoices",
        {"invoice_id": INVOICE["invoice_id"], "status": "void", "last_modified_time": "2026-06-11T09:00:00-0400"},
        is_summary=True,
    )
    assert apply(summary, detail) == [ApplyOutcome.APPLIED, ApplyOutcome.APPLIED]
    invoice = Invoice.objects.get()
    assert invoice.status == "void" and invoice.lines.get().line_item_id == "L1"


def test_audit_lists_changed_lines():
    apply(enqueue("invoices", invoice_version("2026-06-10T09:00:00-0400", line_items=[line(1)])))
    change = enqueue("invoices", invoice_version("2026-06-11T09:00:00-0400", line_items=[line(1, quantity=5)]))
    apply(change)
    audit = AuditTrail.objects.get(queue_item_id=change.pk)
    assert audit.changed_fields == ["lines"]
    assert (audit.before["lines"][0]["quantity"], audit.after["lines"][0]["quantity"]) == ("1", "5")


def test_percent_discount_without_amount_is_unknown_not_a_failure():
    apply(enqueue("invoices", invoice_version("2026-06-10T09:00:00-0400", line_items=[line(1, discount="12.5%")])))
    assert InvoiceLine.objects.get().discount is None


def test_empty_date_is_null():
    apply(enqueue("invoices", {**INVOICE, "due_date": ""}))
    assert Invoice.objects.get().due_date is None


def test_unparseable_date_fails_the_batch():
    with pytest.raises(ValidationFailed, match="not a date"):
        apply(enqueue("invoices", {**INVOICE, "date": "09/06/2026"}))
    assert not Invoice.objects.exists()


def test_bill_sample_lands_with_vendor_reference():
    vendor = {**CONTACT, "contact_id": sample("books-bill")["vendor_id"], "contact_type": "vendor"}
    apply(enqueue("vendors", vendor))
    apply(enqueue("bills", sample("books-bill")))
    bill = Bill.objects.get()
    assert (bill.bill_number, bill.total, bill.balance, bill.due_date) == (
        "BILL-001",
        Decimal("500"),
        Decimal("500"),
        date(2026, 7, 9),
    )
    assert bill.vendor_ref == Vendor.objects.get()
    assert BillLine.objects.get().item_ref is None  # the line names no item


def test_credit_note_sample_lands():
    apply(enqueue("credit-notes", sample("books-creditnote")))
    note = CreditNote.objects.get()
    assert (note.creditnote_number, note.total) == ("CN-00005", Decimal("100"))
    assert note.lines.get().item_id == "260815000000100002"


def test_inventory_sales_order_sample_lands_numeric_ids_as_text():
    apply(enqueue("sales-orders", sample("inventory-salesorder")))
    order = SalesOrder.objects.get()
    assert (order.zoho_id, order.salesorder_number, order.shipment_date, order.customer_id) == (
        "4815000000044895",
        "SO-00003",
        date(2015, 6, 2),
        "4815000000044080",
    )
    assert order.zoho_last_modified.isoformat() == "2015-05-28T00:00:00+00:00"
    sales_line = order.lines.get()
    assert (sales_line.tax_id, sales_line.quantity, sales_line.item_total) == (
        "4815000000044043",
        Decimal("2"),
        Decimal("244"),
    )


def test_payment_sample_lands_allocations_with_invoice_reference():
    apply(enqueue("invoices", INVOICE))
    payment_obj = sample("books-customerpayment")
    item = enqueue("payments", payment_obj)
    assert item.version is not None  # from updated_time: a payment detail has no last_modified_time
    apply(item)
    payment = Payment.objects.get()
    assert (payment.payment_number, payment.amount, payment.payment_mode, payment.date) == (
        "1",
        Decimal("598"),
        "check",
        date(2026, 6, 9),
    )
    allocation = payment.lines.get()
    assert (allocation.invoice_id, allocation.amount_applied) == ("260815000000103001", Decimal("598"))
    assert allocation.invoice_ref == Invoice.objects.get()


def test_price_list_items_land_from_pricebook_items():
    apply(enqueue("products", sample("books-item")))
    book = {
        "pricebook_id": "PB1",
        "name": "Wholesale",
        "currency_code": "USD",
        "pricebook_type": "per_item",
        "status": "active",
        "pricebook_items": [{"pricebook_item_id": "PBI1", "item_id": "260815000000100002", "pricebook_rate": 250}],
    }
    apply(enqueue("prices", book))
    price_list = PriceList.objects.get()
    assert (price_list.name, price_list.pricebook_type) == ("Wholesale", "per_item")
    entry = price_list.lines.get()
    assert entry.pricebook_rate == Decimal("250") and entry.item_ref == Product.objects.get()


def test_simulator_price_book_sample_lands():
    apply(enqueue("prices", sample("pricebook")))
    price_list = PriceList.objects.get()
    assert (price_list.zoho_id, price_list.currency_code, price_list.status) == ("260815000000120001", "USD", "active")
    assert price_list.lines.get().pricebook_rate == Decimal("269.1")


def test_simulator_user_sample_lands_without_a_version():
    item = enqueue("users", sample("user"))
    assert item.version is None
    assert apply(item) == [ApplyOutcome.APPLIED]
    stored = ErpUser.objects.get()
    assert (stored.name, stored.email, stored.role_id, stored.user_type) == (
        "Nango Developer",
        "developer@nango.dev",
        "260815000000000599",
        "zoho",
    )


def test_user_lands():
    user = {"user_id": "U1", "name": "Ann", "email": "ann@example.com", "role_id": 7, "status": "active"}
    apply(enqueue("users", user))
    stored = ErpUser.objects.get()
    assert (stored.zoho_id, stored.name, stored.role_id, stored.user_type) == ("U1", "Ann", "7", "")


def test_invoice_batch_applies_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    apply(enqueue("invoices", {**INVOICE, "invoice_id": "0"}))  # one stored already: its lines are read too
    items = [
        enqueue("invoices", {**INVOICE, "invoice_id": str(n), "line_items": [line(k) for k in range(5)]})
        for n in range(1, 41)
    ]
    # An invoice is a parent too (of payment allocations): one read of the rows waiting for these;
    # and their customer is not stored: one upsert remembers it (sync.parents).
    with django_assert_max_num_queries(13):
        assert set(apply(*items)) == {ApplyOutcome.APPLIED}
    assert InvoiceLine.objects.count() == 1 + 40 * 5
