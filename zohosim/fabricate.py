"""Realistic Zoho objects for the simulator, built from recorded samples (zohosim/samples/).

Each object starts as a copy of its sample, so every field Zoho sends is there (empty values as
`""`), then gets its own ids, numbers, names, dates, amounts and lines. References between
entities (an invoice's customer and items, a payment's invoices) point at objects already seeded
when there are any, so a seeded organisation hangs together.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from .store import clone

SAMPLES = Path(__file__).resolve().parent / "samples"
TEMPLATES = {
    "products": "books-item",
    "customers": "books-contact",
    "vendors": "books-contact",
    "invoices": "books-invoice",
    "bills": "books-bill",
    "credit-notes": "books-creditnote",
    "sales-orders": "inventory-salesorder",
    "payments": "books-customerpayment",
    "stock": "inventory-inventoryadjustment",
    "prices": "pricebook",
    "users": "user",
}
HISTORY_ENDS_BEFORE_NOW = timedelta(hours=1)
UNTIMED = ("users", "prices")  # Zoho sends these without created or last_modified times
LOCATIONS = [("Head Office", True), ("East Warehouse", False), ("West Warehouse", False)]

_ADJECTIVES = ["Steel", "Compact", "Premium", "Heavy", "Classic", "Smart", "Eco", "Pro", "Mini", "Ultra"]
_NOUNS = ["Bracket", "Valve", "Cable", "Laptop", "Chair", "Lamp", "Filter", "Pump", "Sensor", "Bag"]
_COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell"]
_SUFFIXES = ["Corp", "Ltd", "Trading", "Industries", "Group", "Supplies"]
_PEOPLE = ["Ana Diaz", "Ben Okafor", "Chen Wei", "Dana Kim", "Eli Novak", "Fatima Noor", "Gus Berg", "Hana Sato"]


@cache
def _sample(name: str) -> dict[str, Any]:
    data = json.loads((SAMPLES / f"{name}.json").read_text())
    if "code" in data:  # an envelope: the object is its one other key
        data = next(v for k, v in data.items() if k not in ("code", "message"))
    return _ids_as_text(data)


@cache
def _item_sample() -> dict[str, Any]:
    # The recorded Books item lacks Inventory's fields (inventory-item.json); Zoho sends "" when unset.
    item = dict(_sample("books-item"))
    for key, value in _sample("inventory-item").items():
        item.setdefault(key, [] if isinstance(value, list) else "")
    return item


def template(slug: str) -> dict[str, Any]:
    return clone(_item_sample() if slug == "products" else _sample(TEMPLATES[slug]))


def organization() -> dict[str, Any]:
    return clone(_sample("books-list-organizations")[0])


def location(location_id: str, name: str, primary: bool) -> dict[str, Any]:
    obj = clone(_sample("inventory-location"))
    obj.update(location_id=location_id, location_name=name, is_primary=primary, type="general")
    obj.update(parent_location_id="", associated_series_ids=[], associated_users=[], tax_settings_id="")
    return obj


def _ids_as_text(value: Any, key: str = "") -> Any:
    # Zoho's doc examples print ids as numbers past 2**53; live Zoho sends strings, so we do.
    if isinstance(value, dict):
        return {k: _ids_as_text(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_ids_as_text(v, key) for v in value]
    if key.endswith("_id") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class Fabricator:
    """Makes the n-th object of an entity. `pick(slug)` returns a stored object to refer to, or None."""

    def __init__(
        self,
        rng: random.Random,
        new_id: Callable[[], str],
        pick: Callable[[str], dict[str, Any] | None],
        fmt: Callable[[datetime], str],
        locations: list[dict[str, Any]],
    ):
        self.rng, self.new_id, self.pick, self.fmt, self.locations = rng, new_id, pick, fmt, locations

    def make(self, slug: str, n: int, now: datetime) -> dict[str, Any]:
        obj = template(slug)
        # Seeded history ends an hour before now, so whatever a test changes afterwards is the only
        # recent change (an incremental pull with an overlap window must not meet seeded records).
        settled = now - HISTORY_ENDS_BEFORE_NOW
        created = settled - timedelta(seconds=self.rng.randint(0, 90 * 86400))
        modified = created + timedelta(seconds=self.rng.randint(0, int((settled - created).total_seconds())))
        build = getattr(self, "_" + slug.replace("-", "_"))
        build(obj, n, created)
        if slug not in UNTIMED:
            obj["created_time"] = self.fmt(created)
            obj["last_modified_time"] = self.fmt(modified)
        return obj

    # -- masters --------------------------------------------------------------------------------
    def _products(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        vendor = self.pick("vendors")
        obj.update(is_taxable=True, reorder_level=self.rng.choice([5, 10, 20]))
        obj.update(
            vendor_id=vendor["contact_id"] if vendor else "", vendor_name=vendor["contact_name"] if vendor else ""
        )
        rate = round(self.rng.uniform(5, 900), 2)
        tracked = self.rng.random() > 0.1
        stocks = [self.rng.randint(0, 400) if tracked else "" for _ in self.locations]
        obj.update(
            item_id=self.new_id(),
            group_id="",
            name=f"{self.rng.choice(_ADJECTIVES)} {self.rng.choice(_NOUNS)} {n}",
            sku=f"SKU-{n:05d}",
            unit=self.rng.choice(["pcs", "box", "kg"]),
            description=f"Catalogue item {n}",
            rate=rate,
            sales_rate=rate,
            pricebook_rate=rate,
            purchase_rate=round(rate * self.rng.uniform(0.4, 0.8), 2),
            item_type="inventory" if tracked else "sales",
            track_inventory=tracked,
            can_be_purchased=tracked,
            created_at=created.date().isoformat(),
            stock_on_hand=sum(stocks) if tracked else "",
            available_stock=sum(stocks) if tracked else "",
            locations=[
                {
                    "location_id": loc["location_id"],
                    "location_name": loc["location_name"],
                    "status": "active",
                    "is_primary": loc["is_primary"],
                    "location_stock_on_hand": stock,
                    "location_available_stock": stock,
                    "location_actual_available_stock": stock,
                }
                for loc, stock in zip(self.locations, stocks, strict=True)
            ],
        )

    def _contact(self, obj: dict[str, Any], n: int, contact_type: str) -> None:
        company = f"{self.rng.choice(_COMPANIES)} {self.rng.choice(_SUFFIXES)} {n}"
        owed = round(self.rng.uniform(0, 5000), 2) if self.rng.random() < 0.4 else 0
        obj.update(
            contact_id=self.new_id(),
            contact_name=company,
            company_name=company,
            contact_type=contact_type,
            customer_sub_type="business",
            email=f"accounts{n}@{company.split()[0].lower()}.example",
            phone=f"+1-555-{self.rng.randint(1000000, 9999999)}",
            outstanding_receivable_amount=owed if contact_type == "customer" else 0,
            outstanding_receivable_amount_bcy=owed if contact_type == "customer" else 0,
            outstanding_payable_amount=owed if contact_type == "vendor" else 0,
            outstanding_payable_amount_bcy=owed if contact_type == "vendor" else 0,
            unused_credits_receivable_amount=0,
            unused_credits_receivable_amount_bcy=0,
        )
        obj["customer_currency_summaries"][0]["outstanding_receivable_amount"] = obj["outstanding_receivable_amount"]
        obj["customer_currency_summaries"][0]["unused_credits_receivable_amount"] = 0
        for address in ("billing_address", "shipping_address"):
            obj[address]["address_id"] = self.new_id()

    def _customers(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        self._contact(obj, n, "customer")

    def _vendors(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        self._contact(obj, n, "vendor")

    def _users(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        name = f"{self.rng.choice(_PEOPLE)} {n}"
        obj.update(
            user_id=self.new_id(),
            name=name,
            email=f"{name.split()[0].lower()}{n}@example.com",
            user_role=self.rng.choice(["admin", "staff", "staff_assigned"]),
            status=self.rng.choice(["active", "active", "active", "inactive"]),
        )

    def _prices(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        markdown = self.rng.choice([0.9, 0.85, 0.8])
        row = obj["pricebook_items"][0]
        lines = []
        for item in self._items(self.rng.randint(1, 5)):
            line = clone(row)
            rate = item.get("rate", 100) or 100
            line.update(item_id=item["item_id"], name=item["name"], sku=item.get("sku", ""), sales_rate=rate)
            line["pricebook_rate"] = round(rate * markdown, 2)
            lines.append(line)
        obj.update(pricebook_id=self.new_id(), name=f"Price list {n}", pricebook_items=lines)

    # -- documents ------------------------------------------------------------------------------
    def _lines(self, row: dict[str, Any], count: int) -> tuple[list[dict[str, Any]], float]:
        lines, total = [], 0.0
        for order, item in enumerate(self._items(count), start=1):
            quantity = self.rng.randint(1, 20)
            rate = item.get("rate") or round(self.rng.uniform(5, 500), 2)
            line = clone(row)
            line.update(line_item_id=self.new_id(), item_id=item["item_id"], name=item["name"], item_order=order)
            line.update(quantity=quantity, rate=rate, bcy_rate=rate, discount=0, item_total=round(quantity * rate, 2))
            lines.append(line)
            total += line["item_total"]
        return lines, round(total, 2)

    def _items(self, count: int) -> list[dict[str, Any]]:
        items = []
        for _ in range(count):
            item = self.pick("products")
            items.append(item or {"item_id": self.new_id(), "name": "Unlisted item", "rate": 0})
        return items

    def _party(self, slug: str, id_key: str, name_key: str) -> dict[str, str]:
        party = self.pick(slug)
        if party is None:
            return {id_key: self.new_id(), name_key: "Walk-in " + slug.rstrip("s")}
        return {id_key: party["contact_id"], name_key: party["contact_name"]}

    def _document(self, obj: dict[str, Any], created: datetime, **header: Any) -> float:
        lines, sub_total = self._lines(obj["line_items"][0], self.rng.randint(1, 4))
        tax = round(sub_total * self.rng.choice([0, 0, 0.05, 0.1]), 2)
        total = round(sub_total + tax, 2)
        obj.update(line_items=lines, sub_total=sub_total, tax_total=tax, total=total, date=created.date().isoformat())
        obj.update(header)
        return total

    @staticmethod
    def _settle(obj: dict[str, Any], total: float, status: str) -> None:
        """What is paid and still owed on an invoice or a bill, as its status says."""
        paid = total if status == "paid" else round(total / 2, 2) if status == "partially_paid" else 0
        obj.update(balance=round(total - paid, 2), payment_made=paid, current_sub_status=status)

    def _invoices(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        status = self.rng.choice(["draft", "sent", "overdue", "paid", "partially_paid"])
        total = self._document(
            obj, created, invoice_id=self.new_id(), invoice_number=f"INV-{n:06d}", status=status,
            due_date=(created + timedelta(days=30)).date().isoformat(),
            **self._party("customers", "customer_id", "customer_name"),
        )  # fmt: skip
        self._settle(obj, total, status)
        obj.update(bcy_sub_total=obj["sub_total"], bcy_tax_total=obj["tax_total"], bcy_total=total)

    def _bills(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        status = self.rng.choice(["open", "overdue", "paid", "partially_paid"])
        total = self._document(
            obj, created, bill_id=self.new_id(), bill_number=f"BILL-{n:05d}", status=status,
            due_date=(created + timedelta(days=30)).date().isoformat(),
            **self._party("vendors", "vendor_id", "vendor_name"),
        )  # fmt: skip
        self._settle(obj, total, status)

    def _credit_notes(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        status = self.rng.choice(["open", "closed"])
        total = self._document(
            obj, created, creditnote_id=self.new_id(), creditnote_number=f"CN-{n:05d}", status=status,
            **self._party("customers", "customer_id", "customer_name"),
        )  # fmt: skip
        obj.update(balance=total if status == "open" else 0, invoices_credited=[], creditnote_refunds=[])

    def _sales_orders(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        self._document(
            obj, created, salesorder_id=self.new_id(), salesorder_number=f"SO-{n:05d}",
            status=self.rng.choice(["draft", "confirmed", "fulfilled", "void"]),
            shipment_date=(created + timedelta(days=7)).date().isoformat(), reference_number=f"REF-S-{n:05d}",
            **self._party("customers", "customer_id", "customer_name"),
        )  # fmt: skip
        for line in obj["line_items"]:
            line["mapped_items"] = []

    def _payments(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        invoice = self.pick("invoices")
        party = (
            {"customer_id": invoice["customer_id"], "customer_name": invoice["customer_name"]}
            if invoice
            else self._party("customers", "customer_id", "customer_name")
        )
        amount = (invoice or {}).get("total") or round(self.rng.uniform(20, 2000), 2)
        allocation = clone(obj["invoices"][0])
        allocation.update(
            invoice_payment_id=self.new_id(),
            invoice_id=invoice["invoice_id"] if invoice else self.new_id(),
            invoice_number=invoice["invoice_number"] if invoice else f"INV-X{n:05d}",
            amount_applied=amount,
            total=amount,
            balance=0,
            date=created.date().isoformat(),
            apply_date=created.date().isoformat(),
        )
        obj.update(party)
        obj.update(
            payment_id=self.new_id(),
            payment_number=str(n),
            payment_number_suffix=str(n),
            payment_mode=self.rng.choice(["check", "cash", "banktransfer", "creditcard"]),
            date=created.date().isoformat(),
            amount=amount,
            unused_amount=0,
            reference_number=f"PAY-{n:05d}",
            invoices=[allocation],
        )
        obj.pop("updated_time", None)  # stored as last_modified_time; the detail renames it

    def _stock(self, obj: dict[str, Any], n: int, created: datetime) -> None:
        row = obj["line_items"][0]
        location = self.rng.choice(self.locations)
        lines = []
        for item in self._items(self.rng.randint(1, 3)):
            line = clone(row)
            line.update(line_item_id=self.new_id(), item_id=item["item_id"], name=item["name"])
            line.update(quantity_adjusted=self.rng.choice([-5, -2, -1, 1, 3, 10]), item_total=0)
            line.update(location_id=location["location_id"], location_name=location["location_name"])
            line.update(serial_numbers=[], batches=[], storages=[])
            lines.append(line)
        obj.update(
            inventory_adjustment_id=self.new_id(),
            date=created.date().isoformat(),
            reason=self.rng.choice(["Damaged goods", "Stocktake", "Returned to vendor", "Found in storage"]),
            reason_id=self.new_id(),
            description=f"Adjustment {n}",
            reference_number=f"REF-IA-{n:05d}",
            adjustment_type="quantity",
            line_items=lines,
            location_id=location["location_id"],
            location_name=location["location_name"],
            total=0,
            custom_fields=[],
        )
