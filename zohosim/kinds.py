"""The kinds of record the simulator seeds, serves and announces, by the slugs TDS Core gives them
(its webhook URLs are /webhooks/<slug>; tests write `sim.seed("credit-notes", 3)`).

Each kind lives in one Zoho module; customers and vendors share Zoho's contacts, told apart by
`contact_type`. The slugs are TDS Core's names, the modules are Zoho's: which slug lives where is
held against TDS Core's registry by tests/simulator/test_registry_matches_simulator.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .modules import MODULES, Module


class ContactType(StrEnum):
    CUSTOMER = "customer"
    VENDOR = "vendor"


@dataclass(frozen=True)
class Kind:
    module: Module
    contact_type: ContactType | None = None  # in contacts: only the records of this type
    # A webhook of this kind may carry another module's record instead: stock announces both
    # adjustments and an item's stock (its per-location snapshot), under that module's single key.
    snapshot_of: Module | None = None

    def holds(self, obj: dict) -> bool:
        """Whether a record of the module is of this kind (a contact of the other type is not)."""
        return self.contact_type is None or obj.get("contact_type") == self.contact_type


KINDS: dict[str, Kind] = {
    "products": Kind(MODULES["items"]),
    "customers": Kind(MODULES["contacts"], ContactType.CUSTOMER),
    "vendors": Kind(MODULES["contacts"], ContactType.VENDOR),
    "invoices": Kind(MODULES["invoices"]),
    "bills": Kind(MODULES["bills"]),
    "credit-notes": Kind(MODULES["creditnotes"]),
    "sales-orders": Kind(MODULES["salesorders"]),
    "payments": Kind(MODULES["customerpayments"]),
    "stock": Kind(MODULES["inventoryadjustments"], snapshot_of=MODULES["items"]),
    "prices": Kind(MODULES["pricebooks"]),
    "users": Kind(MODULES["users"]),
}
