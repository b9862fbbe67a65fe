"""Sample data flowing in for `make run`: a seeded organisation whose records change every few seconds.

As in a real organisation, not every change sends a webhook (workflow rules off, bulk edits):
about one in five is only visible to pulls and reconciliation, which is what they are for. Price
lists and users never send one: Zoho has no workflow webhooks for them, so only pulls see them.

Every entity keeps changing, and what is deleted is also created, so a demo left running for hours
still has some of everything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from . import ZohoSimulator
from .kinds import KINDS

DEMO_COUNTS = {
    "users": 5,
    "products": 60,
    "customers": 25,
    "vendors": 10,
    "prices": 3,
    "invoices": 80,
    "bills": 30,
    "credit-notes": 10,
    "sales-orders": 30,
    "payments": 30,
    "stock": 15,
}
UNANNOUNCED_SHARE = 0.2
PULLED_ONLY = {"prices", "users"}  # no Zoho workflow webhooks for these modules


@dataclass(frozen=True)
class Change:
    slug: str
    zoho_id: str
    action: str  # "created", "updated", "deleted"
    delivered: int | None  # HTTP status of the webhook; None when none was sent or it failed


def seed_demo(sim: ZohoSimulator) -> int:
    """Seed every entity (masters first, so documents refer to them); return how many objects."""
    return sum(len(sim.seed(slug, count)) for slug, count in DEMO_COUNTS.items())


def demo_tick(sim: ZohoSimulator, rng: random.Random, *, changes: int = 3) -> list[Change]:
    """Make a few changes and announce most of them by webhook."""
    made = []
    for _ in range(changes):
        slug, obj, action = rng.choice(_MOVES)(sim, rng)
        if obj is None:
            continue
        zoho_id = str(obj[_id_field(slug, obj)])
        delivered = None
        if slug not in PULLED_ONLY and rng.random() >= UNANNOUNCED_SHARE and sim.webhook_target:
            try:
                method = "DELETE" if action == "deleted" else "POST"
                delivered = sim.push_webhook(slug, obj, method=method, timeout=5).status_code
            except httpx.HTTPError:
                delivered = None  # TDS Core not up (yet): Zoho does not retry either
        made.append(Change(slug, zoho_id, action, delivered))
    return made


def _id_field(slug: str, obj: dict) -> str:
    kind = KINDS[slug]
    if kind.snapshot_of and kind.module.id_field not in obj:
        return kind.snapshot_of.id_field  # an item's new stock, not an adjustment
    return kind.module.id_field


def _pick(sim: ZohoSimulator, rng: random.Random, slug: str) -> dict | None:
    objects = sim.all(slug)
    return rng.choice(objects) if objects else None


def _edit_invoice(sim: ZohoSimulator, rng: random.Random):
    invoice = _pick(sim, rng, "invoices")
    if invoice is None:
        return "invoices", None, "updated"
    status = rng.choice(["sent", "paid", "overdue", "void"])
    balance = 0 if status in ("paid", "void") else invoice["total"]
    return "invoices", sim.update("invoices", invoice["invoice_id"], status=status, balance=balance), "updated"


def _reprice_product(sim: ZohoSimulator, rng: random.Random):
    item = _pick(sim, rng, "products")
    if item is None:
        return "products", None, "updated"
    rate = round(item["rate"] * rng.uniform(0.9, 1.1), 2)
    return "products", sim.update("products", item["item_id"], rate=rate, sales_rate=rate), "updated"


def _move_stock(sim: ZohoSimulator, rng: random.Random):
    item = _pick(sim, rng, "products")
    if item is None or not item.get("track_inventory"):
        return "stock", None, "updated"
    sim.adjust_stock(item["item_id"], rng.choice(sim.locations)["location_id"], rng.choice([-3, -1, 2, 5]))
    return "stock", sim.get("products", item["item_id"]), "updated"  # the item's new snapshot


def _new_document(sim: ZohoSimulator, rng: random.Random):
    slug = rng.choice(["invoices", "bills", "sales-orders", "payments", "customers", "vendors"])
    return slug, sim.seed(slug, 1, created_time=sim.now(), last_modified_time=sim.now())[0], "created"


def _edit_payment(sim: ZohoSimulator, rng: random.Random):
    payment = _pick(sim, rng, "payments")
    if payment is None:
        return "payments", None, "updated"
    reference = f"REF-{rng.randint(10000, 99999)}"
    return "payments", sim.update("payments", payment["payment_id"], reference_number=reference), "updated"


def _reprice_price_list(sim: ZohoSimulator, rng: random.Random):
    book = _pick(sim, rng, "prices")
    if book is None:
        return "prices", None, "updated"
    factor = rng.choice([0.98, 0.99, 1.01, 1.02])
    lines = [{**line, "pricebook_rate": round(line["pricebook_rate"] * factor, 2)} for line in book["pricebook_items"]]
    return "prices", sim.update("prices", book["pricebook_id"], pricebook_items=lines), "updated"


def _edit_user(sim: ZohoSimulator, rng: random.Random):
    user = _pick(sim, rng, "users")
    if user is None:
        return "users", None, "updated"
    status = "inactive" if user.get("status") == "active" else "active"
    return "users", sim.update("users", user["user_id"], status=status), "updated"


def _churn_credit_note(sim: ZohoSimulator, rng: random.Random):
    # Deleted as often as created, around the seeded count, so they never run down to zero.
    notes = sim.all("credit-notes")
    if len(notes) < DEMO_COUNTS["credit-notes"]:
        return (
            "credit-notes",
            sim.seed("credit-notes", 1, created_time=sim.now(), last_modified_time=sim.now())[0],
            "created",
        )
    note = rng.choice(notes)
    sim.delete("credit-notes", note["creditnote_id"])
    return "credit-notes", note, "deleted"


# Weighted by repetition: edits are common, creations and deletes rarer.
_MOVES = [
    _edit_invoice,
    _edit_invoice,
    _reprice_product,
    _move_stock,
    _move_stock,
    _new_document,
    _churn_credit_note,
    _edit_payment,
    _reprice_price_list,
    _edit_user,
]
