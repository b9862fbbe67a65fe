"""A child applied before its parent gets its reference when the parent lands, in the parent's apply."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from erp.models import Bill, Customer, Invoice, InvoiceLine, Payment, PaymentAllocation, Product, Vendor
from sync import parents
from sync.models import ParentWait
from tests.handlers.conftest import NOW, apply, enqueue, sample

INVOICE = sample("books-invoice")
CONTACT = sample("books-contact")
ITEM = sample("books-item")
BILL = sample("books-bill")
PAYMENT = sample("books-customerpayment")


def test_invoice_before_its_customer_gets_its_reference_when_the_customer_lands():
    apply(enqueue("invoices", INVOICE))
    assert Invoice.objects.get().customer_ref is None
    wait = ParentWait.objects.get(parent_entity="customers")
    assert (wait.parent_id, wait.child_tables) == (INVOICE["customer_id"], ["erp_invoice"])
    apply(enqueue("customers", CONTACT))
    assert Invoice.objects.get().customer_ref == Customer.objects.get()
    assert not ParentWait.objects.filter(parent_entity="customers").exists()


def test_a_customer_batch_touches_no_line_table():
    apply(enqueue("invoices", INVOICE))
    with CaptureQueriesContext(connection) as queries:
        apply(enqueue("customers", CONTACT))
    touched = " ".join(q["sql"] for q in queries.captured_queries)
    assert re.findall(r"erp_\w*line\w*", touched) == []
    assert "erp_paymentallocation" not in touched
    assert Invoice.objects.get().customer_ref is not None


def test_a_line_before_its_product_gets_its_reference_when_the_product_lands():
    item_id = ITEM["item_id"]
    invoice = {**INVOICE, "line_items": [{**INVOICE["line_items"][0], "item_id": item_id}]}
    apply(enqueue("invoices", invoice))
    assert InvoiceLine.objects.get().item_ref is None
    assert ParentWait.objects.get(parent_entity="products").child_tables == ["erp_invoiceline"]
    with CaptureQueriesContext(connection) as queries:
        apply(enqueue("products", ITEM))
    touched = " ".join(q["sql"] for q in queries.captured_queries)
    # Only the table that waits is updated: no other line table, stock or price list is read.
    assert [t for t in OTHER_CHILDREN_OF_PRODUCTS if t in touched] == []
    assert InvoiceLine.objects.get().item_ref == Product.objects.get()
    assert not ParentWait.objects.filter(parent_entity="products").exists()


OTHER_CHILDREN_OF_PRODUCTS = (
    "erp_billline",
    "erp_creditnoteline",
    "erp_salesorderline",
    "erp_stocklevel",
    "erp_stockadjustmentline",
    "erp_pricelistitem",
)


def test_a_parent_awaited_by_two_tables_fills_both():
    customer_id = INVOICE["customer_id"]
    apply(enqueue("invoices", INVOICE))
    apply(enqueue("payments", {**PAYMENT, "customer_id": customer_id}))
    assert sorted(ParentWait.objects.get(parent_entity="customers").child_tables) == ["erp_invoice", "erp_payment"]
    apply(enqueue("customers", CONTACT))
    customer = Customer.objects.get()
    assert (Invoice.objects.get().customer_ref, Payment.objects.get().customer_ref) == (customer, customer)


def test_a_bill_before_its_vendor_and_an_allocation_before_its_invoice():
    vendor = {**CONTACT, "contact_id": BILL["vendor_id"], "contact_type": "vendor"}
    apply(enqueue("bills", BILL))
    payment = {**PAYMENT, "invoices": [{"invoice_id": INVOICE["invoice_id"], "amount_applied": "1.00"}]}
    apply(enqueue("payments", payment))
    apply(enqueue("vendors", vendor))
    apply(enqueue("invoices", INVOICE))
    assert Bill.objects.get().vendor_ref == Vendor.objects.get()
    assert PaymentAllocation.objects.get().invoice_ref == Invoice.objects.get()


def test_a_contact_awaited_as_customer_that_lands_as_vendor_answers_the_wait():
    apply(enqueue("invoices", INVOICE))
    apply(enqueue("vendors", {**CONTACT, "contact_type": "vendor"}))
    assert Invoice.objects.get().customer_ref is None
    assert not ParentWait.objects.filter(parent_id=INVOICE["customer_id"]).exists()


def test_nothing_is_remembered_when_every_parent_is_stored():
    apply(enqueue("customers", CONTACT))
    invoice = {**INVOICE, "line_items": [{**INVOICE["line_items"][0], "item_id": ""}]}
    apply(enqueue("invoices", invoice))
    assert not ParentWait.objects.exists()


def test_missing_parents_cost_one_statement_per_batch(django_assert_max_num_queries):
    apply(enqueue("invoices", {**INVOICE, "invoice_id": "0"}))
    items = [
        enqueue(
            "invoices",
            {
                **INVOICE,
                "invoice_id": str(n),
                "customer_id": f"C{n}",
                "line_items": [
                    {**INVOICE["line_items"][0], "line_item_id": f"L{k}", "item_id": f"I{n}-{k}"} for k in range(5)
                ],
            },
        )
        for n in range(1, 41)
    ]
    # As many as the batch of test_documents.py, whose one customer is missing too: one upsert,
    # whether 1 or 240 parents are awaited (SQLite splits the lines' INSERT by its parameter limit).
    with django_assert_max_num_queries(13 if connection.vendor == "postgresql" else 14):
        apply(*items)
    assert ParentWait.objects.count() == 2 + 40 + 40 * 5  # invoice 0 awaits its customer and an item


def test_heal_fills_a_reference_whose_wait_crossed_its_parent():
    # The child's batch and the parent's committed together: the parent's apply saw no wait.
    apply(enqueue("customers", CONTACT))
    Invoice.objects.create(zoho_id="I1", customer_id=CONTACT["contact_id"], synced_at=NOW)
    assert parents.settle() == 1
    assert Invoice.objects.get().customer_ref == Customer.objects.get()
