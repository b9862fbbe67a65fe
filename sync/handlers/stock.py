"""An item's stock snapshot (queue object `item:<id>`) → one StockLevel row per location.

Stock levels change only from these absolute snapshots (`locations[].location_stock_on_hand`;
`""` is unknown → NULL, never 0). Adjustments are documents on the plain Handler and never touch
StockLevel. The snapshot is the object the queue versions: all of an item's level rows carry its
version and content hash, so stale and unchanged snapshots are decided like any other object.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import cached_property
from typing import Any

from django.db.models import Max

from erp.models import Product, StockLevel, stock_level_key
from sync import parents, schema_drift
from sync.errors import ValidationFailed
from sync.handlers import bulk, unread, values
from sync.handlers.apply import Columns, Handler, Lines, link_parents, lock_objects
from sync.handlers.decisions import Change, highest
from sync.models import QueueItem

# Older Zoho Inventory organisations call locations warehouses.
LOCATIONS = Lines(
    StockLevel,
    keys=("locations", "warehouses"),
    renames={
        "location_id": ("location_id", "warehouse_id"),
        "location_name": ("location_name", "warehouse_name"),
        "stock_on_hand": ("location_stock_on_hand", "warehouse_stock_on_hand"),
        "available_stock": ("location_available_stock", "warehouse_available_stock"),
    },
    unread=unread.LOCATION,
)
PRODUCT_STOCK = ("stock_on_hand", "available_stock")


class ItemStock:
    """The stored level rows of one item, decided as one object."""

    def __init__(self, item_id: str, levels: list[StockLevel]):
        self.item_id = item_id
        self.levels = {level.location_id: level for level in levels}
        self.exists = bool(levels)
        self.product_stock: dict[str, Any] = {}

    @property
    def version(self) -> datetime | None:
        return max((lv.zoho_last_modified for lv in self.levels.values() if lv.zoho_last_modified), default=None)

    @property
    def content_hash(self) -> str:
        hashes = {lv.content_hash for lv in self.levels.values()}
        return hashes.pop() if len(hashes) == 1 else ""

    is_summary = False

    @property
    def deleted_at(self) -> datetime | None:
        if self.levels and all(lv.deleted_at for lv in self.levels.values()):
            return max(lv.deleted_at for lv in self.levels.values())
        return None

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f"{loc}.{name}": getattr(level, name)
            for loc, level in sorted(self.levels.items())
            for name in ("location_name", "stock_on_hand", "available_stock")
        }
        out["deleted_at"] = self.deleted_at
        return out

    def apply(self, change: Change, now: datetime) -> None:
        version = highest(self.version, change.version)
        for location in change.lines or []:
            loc = location["location_id"]
            level = self.levels.get(loc) or StockLevel(zoho_id=stock_level_key(self.item_id, loc), location_id=loc)
            for name, value in location.items():
                setattr(level, name, value)
            level.item_id = self.item_id
            self.levels[loc] = level
        # Locations the snapshot leaves out keep their quantities; all rows take its version and hash.
        for level in self.levels.values():
            level.zoho_last_modified = version
            level.content_hash = change.item.content_hash
            level.synced_at = now
            level.deleted_at = None
        self.product_stock = change.values

    def tombstone(self, change: Change, now: datetime) -> None:
        for level in self.levels.values():
            level.zoho_last_modified = highest(level.zoho_last_modified, change.version)
            level.deleted_at = now
            level.synced_at = now


class StockLevelHandler(Handler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.location_columns = Columns(StockLevel, LOCATIONS.renames, skip={"item_id"})

    @cached_property
    def known_fields(self) -> schema_drift.Known:
        # The snapshot is an item: its own fields are the products entity's to report, once.
        lines = {key for _, keys, _ in self.location_columns.fields for key in keys} | LOCATIONS.unread
        return schema_drift.Known(None, LOCATIONS.keys, frozenset(lines))

    def _read(self, item: QueueItem) -> Change:
        change = super()._read(item)
        if change.delete:
            return change
        locations = LOCATIONS.read(change.obj, self.location_columns)
        if locations is not None:
            if any(not loc["location_id"] for loc in locations):
                raise ValidationFailed("a location without location_id")
            # Each level row keeps its own location entry as applied.
            raw = next(change.obj[k] for k in LOCATIONS.keys if k in change.obj) or []
            for mapped, entry in zip(locations, raw, strict=True):
                mapped["raw"] = entry
        # The item-level figures are kept on Product only when the snapshot carries them.
        product = {name: values.money(change.obj[name]) for name in PRODUCT_STOCK if name in change.obj}
        return Change(item, change.zoho_id, change.obj, product, locations)

    def load(self, zoho_ids: set[str], now: datetime) -> dict[str, ItemStock]:
        lock_objects(StockLevel._meta.db_table, zoho_ids)
        levels = defaultdict(list)
        for level in StockLevel.objects.select_for_update().filter(item_id__in=zoho_ids).order_by("zoho_id"):
            levels[level.item_id].append(level)
        return {item_id: ItemStock(item_id, levels[item_id]) for item_id in zoho_ids}

    def stored_versions(self, zoho_ids) -> dict[str, datetime | None]:
        levels = StockLevel.objects.filter(item_id__in=zoho_ids).values("item_id").annotate(v=Max("zoho_last_modified"))
        return {row["item_id"]: row["v"] for row in levels}

    def save(self, records: list[ItemStock], now: datetime) -> None:
        levels = [level for r in records for level in r.levels.values()]
        missing = link_parents(levels, self.location_columns.parents, child=lambda level: f"stock {level.zoho_id}")
        bulk.insert(StockLevel, levels, upsert_on="zoho_id")
        parents.remember(missing, now=now)
        self._keep_products_in_step({r.item_id: r.product_stock for r in records if r.product_stock})

    def _keep_products_in_step(self, stock: dict[str, dict[str, Any]]) -> None:
        if not stock:
            return
        products = list(Product.objects.select_for_update().filter(zoho_id__in=stock).order_by("zoho_id"))
        for product in products:
            for name, value in stock[product.zoho_id].items():
                setattr(product, name, value)
        Product.objects.bulk_update(products, list(PRODUCT_STOCK))
