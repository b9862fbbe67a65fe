"""Handler benchmark: `sync.handlers.apply_batch` alone, without claiming or the worker.

Applies batches of queue rows as a worker does (one transaction per batch), payloads shaped like the
recorded Zoho item (~3 KB) and invoice (~10 KB), and reports rows/s for
  - products, 100-row batches: first as creates, then as new versions of the same objects;
  - invoices with 5 lines, 100-document batches: creates, then new versions (lines replaced).
Baseline, same run, same data: the row-by-row way (`update_or_create` per object, lines deleted and
re-inserted per document), in the same transactions.

Targets (end to end, with the worker, 2 processes): products >= 2,000 rows/s, invoices with 5 lines
>= 500 documents/s. The apply alone must leave room above that for claim/finish.

    .venv/bin/python bench/apply_batch.py                  # PostgreSQL, a fresh test database
    .venv/bin/python bench/apply_batch.py --smoke --database-url sqlite:///:memory:

The queue rows are written before timing starts (they are the input, not the work measured). On a
shared machine the wall-clock rates follow the load; rows per CPU-second of the bench process (the
Python side of apply_batch, not PostgreSQL's) is the steadier figure to compare runs by.
Exit status 0 when every row came out applied; 1 otherwise (speed is reported, not enforced).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "zohosim" / "samples"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run (seconds), for the test suite")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", harness.DEFAULT_DATABASE_URL))
    parser.add_argument("--batches", type=int, default=20, help="batches per phase")
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args(argv)
    if args.smoke:
        args.batches, args.batch_size = 2, 10
    with harness.throwaway_database(args.database_url):
        return run(args.batches, args.batch_size)


def run(batches: int, size: int) -> int:
    from django.db import connection

    print(f"database: {connection.vendor}; {batches} batches of {size} per phase")
    ok = True
    for name, payload in (("products", product), ("invoices (5 lines)", invoice)):
        entity = "products" if name == "products" else "invoices"
        for phase, minutes in (("create", 0), ("update", 60)):
            handler_rate, per_cpu, all_applied = time_handler(entity, payload, batches, size, minutes, phase)
            baseline_rate = time_row_by_row(entity, payload, batches, size, minutes)
            ok &= all_applied
            print(
                f"{name:<20} {phase:<7} apply_batch {handler_rate:>8,.0f} rows/s   "
                f"row-by-row baseline {baseline_rate:>7,.0f} rows/s   x{handler_rate / baseline_rate:.1f}   "
                f"(apply_batch: {per_cpu:,.0f} rows per CPU-second of this process)"
            )
    return 0 if ok else 1


def stamp(minutes: int) -> str:
    return (datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S%z")


def recorded(name: str) -> dict:
    """A live Zoho Books record (the samples the webhook tests keep), so payload sizes are real."""
    return json.loads((SAMPLES / name).read_text())


ITEM, INVOICE = recorded("books-item.json")["item"], recorded("books-invoice.json")["invoice"]


def product(n: int, minutes: int) -> dict:
    return {
        **ITEM,
        "item_id": f"P{n}",
        "name": f"Widget {n}",
        "rate": 10 + minutes,
        "last_modified_time": stamp(minutes),
    }


def invoice(n: int, minutes: int) -> dict:
    line = INVOICE["line_items"][0]
    lines = [{**line, "line_item_id": f"I{n}-{k}", "item_id": f"P{k}", "quantity": k + 1 + minutes} for k in range(5)]
    return {
        **INVOICE,
        "invoice_id": f"I{n}",
        "invoice_number": f"INV-{n:06d}",
        "total": 50 + minutes,
        "last_modified_time": stamp(minutes),
        "line_items": lines,
    }


def queue_rows(entity: str, payload: Callable[[int, int], dict], batches: int, size: int, minutes: int) -> list:
    from sync.models import QueueItem
    from sync.payloads import content_hash, version_of

    now = datetime.now(UTC)
    rows = []
    for n in range(batches * size):
        obj = payload(n, minutes)
        rows.append(
            QueueItem(
                entity=entity,
                object_id=obj["item_id" if entity == "products" else "invoice_id"],
                payload=obj,
                content_hash=content_hash(obj),
                version=version_of(obj),
                source=QueueItem.Source.PULL,
                status=QueueItem.Status.PROCESSING,
                next_attempt_at=now,
            )
        )
    QueueItem.objects.bulk_create(rows, batch_size=1000)
    return rows


def time_handler(entity, payload, batches: int, size: int, minutes: int, phase: str) -> tuple[float, bool]:
    from django.db import transaction

    from sync.handlers import ApplyOutcome, apply_batch

    rows = queue_rows(entity, payload, batches, size, minutes)
    applied = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), size):
        with transaction.atomic():
            outcomes = apply_batch(rows[i : i + size], now=datetime.now(UTC))
        applied += sum(o == ApplyOutcome.APPLIED for o in outcomes.values())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return len(rows) / elapsed, len(rows) / cpu, applied == len(rows)


def time_row_by_row(entity, payload, batches: int, size: int, minutes: int) -> float:
    """The same objects written one by one through the ORM, into copies keyed apart from the handler's.

    Kinder than the real thing: no version check and no audit row.
    """
    from django.db import transaction

    from erp.models import Invoice, InvoiceLine, Product
    from sync.handlers.declarations import HANDLERS

    handler = next(h for h in HANDLERS if h.entity.slug == entity)
    model = Product if entity == "products" else Invoice
    objs = [payload(n, minutes) for n in range(batches * size)]
    started = time.perf_counter()
    now = datetime.now(UTC)
    for i in range(0, len(objs), size):
        with transaction.atomic():
            for obj in objs[i : i + size]:
                values = handler.columns.read(obj, whole=False)
                row, _ = model.objects.update_or_create(
                    zoho_id="base-" + obj[handler.id_field], defaults={**values, "raw": obj, "synced_at": now}
                )
                if entity == "invoices":
                    InvoiceLine.objects.filter(invoice=row).delete()
                    InvoiceLine.objects.bulk_create(
                        InvoiceLine(invoice=row, position=k, **handler.line_columns.read(line, whole=True))
                        for k, line in enumerate(obj["line_items"])
                    )
    return len(objs) / (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
