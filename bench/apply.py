"""Apply-engine benchmark: run by hand on PostgreSQL; figures go to docs/BENCHMARKS.md.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tdscore .venv/bin/python bench/apply.py
    … bench/apply.py --smoke        # seconds; run by tests/queue/test_bench_smoke.py
    … bench/apply.py --parts latency   # webhook → ERP only: 100/s for 20 s and 500/s for 10 s,
                                       # wake-ups on, then off (the polling baseline), on a quiet machine
    … bench/apply.py --parts ceiling   # the apply rate (1 and 2 workers) against the bulk-upsert ceiling

Measures, in one run on a scratch database (created and dropped here):
1. apply rate with 1, 2 and 4 worker processes, for products and for invoices with 5 lines
   (queue rows with their inbox rows, applied with audit rows, logs and inbox updates on), beside a
   baseline: the same rows written row by row with `update_or_create` in the same run;
2. end-to-end latency, webhook accepted (inbox received_at) → ERP row committed (queue finished_at,
   same transaction), at a steady 100/s for 20 s and 500/s for 10 s posted to a real gunicorn on
   127.0.0.1 while 2 workers drain, beside the 202 answer's own p50/p95, and how many were lost
   (sent minus applied); each rate twice in the run: with wake-ups on (TDS_WAKEUPS, sync.wakeup)
   and off, where drainers only poll every queue_poll_interval_ms (the baseline);
3. worker RSS (psutil) while 2 workers drain a large backlog;
4. the ceiling: the same ERP rows (products; invoices with their 5 lines) written by one process
   with one INSERT … ON CONFLICT DO UPDATE per batch of batch_size (and one INSERT of the batch's
   lines), one transaction per batch, into copies of the ERP tables, with no queue, no audit, no
   decision; the apply rate is reported as a fraction of it.
Workers are forked after Django is set up and released together, so the rate excludes start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tdscore.settings")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import psutil  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from erp.models import Invoice, InvoiceLine, Product  # noqa: E402
from sync import worker  # noqa: E402
from sync.config_keys import BATCH_SIZE  # noqa: E402
from sync.handlers import bulk, handler_for  # noqa: E402
from sync.models import AuditTrail, InboxEvent, QueueItem  # noqa: E402
from sync.payloads import content_hash  # noqa: E402
from tdscore import config  # noqa: E402

SAMPLES = BASE_DIR / "zohosim" / "samples"
T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)
TOKEN = "bench-token"


def sample(name: str, key: str) -> dict:
    body = json.loads((SAMPLES / name).read_text())
    return body.get(key, body)


def product(n: int, v: int = 0) -> dict:
    obj = copy.deepcopy(PRODUCT)
    obj.update(item_id=f"b{n}", name=f"Bench product {n}", sku=f"B-{n}", rate=10 + v)
    obj["last_modified_time"] = (T0 + timedelta(minutes=v)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    return obj


def invoice(n: int) -> dict:
    obj = copy.deepcopy(INVOICE)
    obj.update(invoice_id=f"i{n}", invoice_number=f"INV-{n}", last_modified_time="2026-11-01T10:00:00+0000")
    line = obj["line_items"][0]
    obj["line_items"] = [{**line, "line_item_id": f"i{n}-{k}", "item_id": f"b{k}", "quantity": k + 1} for k in range(5)]
    return obj


def reset() -> None:
    # TRUNCATE: the audit trail refuses DELETE on PostgreSQL, by design.
    tables = [m._meta.db_table for m in (AuditTrail, QueueItem, InboxEvent, InvoiceLine, Invoice, Product)]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def load(entity: str, objects: list[dict], id_field: str) -> None:
    """Queue rows with their inbox rows, as the webhook view leaves them."""
    now = timezone.now()
    events = InboxEvent.objects.bulk_create(
        [
            InboxEvent(
                entity=entity,
                object_id=o[id_field],
                source="token",
                method="POST",
                raw_body=b"{}",
                idempotency_key=f"{entity}:{o[id_field]}:{n}",
                content_hash=content_hash(o),
                received_at=now,
            )
            for n, o in enumerate(objects)
        ],
        batch_size=2000,
    )
    QueueItem.objects.bulk_create(
        [
            QueueItem(
                entity=entity,
                object_id=o[id_field],
                version=T0,
                payload=o,
                content_hash=content_hash(o),
                source="webhook",
                inbox_event=event,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for o, event in zip(objects, events, strict=True)
        ],
        batch_size=2000,
    )


def _drain_child(start, stop, once: bool) -> None:
    start.wait()
    worker.drain(None, worker_id=worker.new_worker_id("bench"), stop=stop, once=once)


def fork_workers(count: int, *, once: bool = True):
    """Forked drainers, waiting for `start`; with once=False they drain until `stop` is set."""
    connections.close_all()  # children open their own connections
    context = multiprocessing.get_context("fork")
    start, stop = context.Event(), context.Event()
    procs = [context.Process(target=_drain_child, args=(start, stop, once)) for _ in range(count)]
    for p in procs:
        p.start()
    time.sleep(0.3)
    return start, stop, procs


def apply_rate(entity: str, objects: list[dict], id_field: str, workers: int) -> float:
    reset()
    load(entity, objects, id_field)
    start, _stop, procs = fork_workers(workers)
    began = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - began
    left = QueueItem.objects.exclude(status="completed").count()
    assert left == 0, f"{left} rows not completed"
    assert AuditTrail.objects.count() == len(objects)
    return len(objects) / elapsed


def baseline_rate(entity: str, objects: list[dict]) -> float:
    """Row by row with update_or_create, no queue, no audit: the naive way, for scale."""
    reset()
    began = time.perf_counter()
    for o in objects:
        if entity == "products":
            Product.objects.update_or_create(
                zoho_id=o["item_id"],
                defaults={
                    "name": o["name"],
                    "sku": o["sku"],
                    "rate": o["rate"],
                    "status": o.get("status", ""),
                    "content_hash": content_hash(o),
                    "raw": o,
                    "synced_at": timezone.now(),
                },
            )
        else:
            doc, _ = Invoice.objects.update_or_create(
                zoho_id=o["invoice_id"],
                defaults={
                    "invoice_number": o["invoice_number"],
                    "total": o["total"],
                    "status": o["status"],
                    "content_hash": content_hash(o),
                    "raw": o,
                    "synced_at": timezone.now(),
                },
            )
            for line in o["line_items"]:
                InvoiceLine.objects.update_or_create(
                    invoice=doc,
                    line_item_id=line["line_item_id"],
                    defaults={"item_id": line["item_id"], "quantity": line["quantity"], "rate": line["rate"]},
                )
    return len(objects) / (time.perf_counter() - began)


def ceiling_rate(entity: str, objects: list[dict], id_field: str) -> float:
    """Rows/s writing the ERP rows the apply writes, as cheaply as PostgreSQL takes them.

    The rows are mapped with the entity's own handler before timing (the columns the apply fills,
    parent references NULL as on an empty ERP); the timing covers encoding each batch, one upsert of
    its headers on zoho_id, one INSERT of its lines and the commit. The copies are logged tables
    made LIKE the ERP tables INCLUDING ALL (same indexes, same WAL), so the ceiling leaves out only
    what the apply adds: claim, lock, decide, audit, finish.
    """
    handler = handler_for(QueueItem(entity=entity, object_id=objects[0][id_field]))
    now, version = timezone.now(), T0
    headers = [
        handler.model(
            zoho_id=o[id_field],
            zoho_last_modified=version,
            content_hash=content_hash(o),
            raw=o,
            synced_at=now,
            **handler.columns.read(o, whole=True),
        )
        for o in objects
    ]
    header_fields = [f for f in handler.model._meta.concrete_fields if not f.primary_key]
    headers = _columns(headers, header_fields)
    line_model = handler.lines.model if handler.lines else None
    if line_model:
        line_fields = [f for f in line_model._meta.concrete_fields if not f.primary_key]
        # Each document's line rows, their reference to the document filled once it has an id.
        lines = [
            _columns(
                [line_model(position=i, **line) for i, line in enumerate(handler.lines.read(o, handler.line_columns))],
                line_fields,
            )
            for o in objects
        ]
    size = config.get(BATCH_SIZE)
    with _table_copy(handler.model) as header_table, _table_copy(line_model) as line_table:
        upsert = _insert_sql(header_table, header_fields)
        updates = ", ".join(f"{f.column} = EXCLUDED.{f.column}" for f in header_fields if f.column != "zoho_id")
        upsert += f" ON CONFLICT (zoho_id) DO UPDATE SET {updates} RETURNING zoho_id, id"
        if line_table:
            insert_lines = _insert_sql(line_table, line_fields)
        began = time.perf_counter()
        for start in range(0, len(objects), size):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(upsert, [bulk.encode(headers[start : start + size])])
                ids = dict(cursor.fetchall())
                if line_table:
                    rows = []
                    for o, document_lines in zip(
                        objects[start : start + size], lines[start : start + size], strict=True
                    ):
                        for line in document_lines:
                            line[handler.line_fk] = ids[o[id_field]]
                        rows += document_lines
                    cursor.execute(insert_lines, [bulk.encode(rows)])
        rate = len(objects) / (time.perf_counter() - began)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {header_table}")
            assert cursor.fetchone()[0] == len(objects), "ceiling: headers missing"
            if line_table:
                cursor.execute(f"SELECT count(*) FROM {line_table}")
                assert cursor.fetchone()[0] == sum(map(len, lines)), "ceiling: lines missing"
        return rate


@contextlib.contextmanager
def _table_copy(model):
    """A fresh empty copy of `model`'s table (None for no model), dropped afterwards."""
    if model is None:
        yield None
        return
    name = f"bench_ceiling_{model._meta.db_table}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (LIKE {model._meta.db_table} INCLUDING ALL)")
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {name}")


def _insert_sql(table: str, fields: list) -> str:
    """INSERT of the rows of one jsonb parameter, as sync.handlers.bulk sends a batch."""
    columns = ", ".join(f.column for f in fields)
    record = ", ".join(f"{f.column} {f.db_type(connection)}" for f in fields)
    return f"INSERT INTO {table} ({columns}) SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({record})"


def _columns(instances: list, fields: list) -> list[dict]:
    return [{f.column: getattr(i, f.attname) for f in fields} for i in instances]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def latency(rate: int, seconds: float, *, wakeups: bool = True) -> dict:
    """Post product webhooks at a steady rate to gunicorn while 2 workers drain; percentiles in ms.

    `wakeups`: TDS_WAKEUPS for gunicorn (which sends them) and the forked drainers (which wait on them)."""
    reset()
    settings.TDS_WAKEUPS = wakeups  # read by the drainers forked below
    port = free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TDS_WEBHOOK_TOKEN": TOKEN,
        "TDS_WAKEUPS": "true" if wakeups else "false",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "tdscore.wsgi"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/health")
        start, stop, procs = fork_workers(2, once=False)
        start.set()
        try:
            sent, took, answers = _post_steadily(f"http://127.0.0.1:{port}/webhooks/products", rate, seconds)
            with contextlib.suppress(RuntimeError):  # what did not drain in time is counted as lost
                _wait_until_drained(timeout=60)
        finally:
            stop.set()
            for p in procs:
                p.join()
    finally:
        server.terminate()
        server.wait(timeout=10)
    rows = QueueItem.objects.filter(status="completed").select_related("inbox_event")
    ms = sorted((r.finished_at - r.inbox_event.received_at).total_seconds() * 1000 for r in rows)
    settings.TDS_WAKEUPS = True
    cuts = statistics.quantiles(ms, n=100)
    answered = statistics.quantiles(answers, n=100)
    return {
        "sent": sent,
        "lost": sent - Product.objects.filter(zoho_id__startswith="b").count(),
        "achieved": sent / took,
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "answer_p50": answered[49],
        "answer_p95": answered[94],
    }


def queue_latency(rate: int, seconds: float) -> dict:
    """The drain side alone: inbox + queue rows written at a steady rate in-process, as the webhook
    view writes them (one transaction each), while 2 workers drain; insert → ERP commit in ms."""
    from sync import queue

    reset()
    start, stop, procs = fork_workers(2, once=False)
    start.set()
    total, began = int(rate * seconds), time.perf_counter()
    try:
        for n in range(total):
            time.sleep(max(0.0, began + n / rate - time.perf_counter()))
            obj, now = product(n), timezone.now()
            with transaction.atomic():
                event = InboxEvent.objects.create(
                    entity="products",
                    object_id=obj["item_id"],
                    source="token",
                    method="POST",
                    raw_body=b"{}",
                    idempotency_key=f"q:{n}",
                    content_hash=content_hash(obj),
                    received_at=now,
                )
                queue.enqueue(
                    entity="products",
                    object_id=obj["item_id"],
                    payload=obj,
                    content_hash=content_hash(obj),
                    version=T0,
                    source="webhook",
                    now=now,
                    inbox_event=event,
                )
        took = time.perf_counter() - began
        _wait_until_drained(timeout=60)
    finally:
        stop.set()
        for p in procs:
            p.join()
    rows = QueueItem.objects.filter(status="completed")
    ms = sorted((r.finished_at - r.created_at).total_seconds() * 1000 for r in rows)
    assert len(ms) == total, f"{total} queued, {len(ms)} applied"
    cuts = statistics.quantiles(ms, n=100)
    return {"sent": total, "achieved": total / took, "p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


def _wait_for(url: str) -> None:
    for _ in range(100):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _post_steadily(url: str, rate: int, seconds: float) -> int:
    """Senders on a fixed timetable (not closed-loop), so a slow answer does not lower the rate."""
    total = int(rate * seconds)
    threads, lanes = [], 8
    answers: list[float] = []  # list.append is atomic under the GIL
    began = time.perf_counter() + 0.2

    def lane(k: int) -> None:
        with httpx.Client(headers={"X-TDS-Token": TOKEN}, timeout=10) as client:
            for n in range(k, total, lanes):
                time.sleep(max(0.0, began + n / rate - time.perf_counter()))
                response = client.post(url, json={"item": product(n)})
                assert response.status_code == 202, response.text
                answers.append(response.elapsed.total_seconds() * 1000)

    for k in range(lanes):
        threads.append(threading.Thread(target=lane, args=(k,)))
        threads[-1].start()
    for t in threads:
        t.join()
    return total, time.perf_counter() - began, answers


def _wait_until_drained(timeout: float) -> None:
    until = time.monotonic() + timeout
    while QueueItem.objects.exclude(status__in=QueueItem.FINISHED).exists():
        if time.monotonic() > until:
            raise RuntimeError("queue did not drain")
        time.sleep(0.1)


def rss_while_draining(backlog: int) -> tuple[float, float]:
    """Peak RSS (MB) of a worker process and the drain rate while 2 workers drain `backlog` rows."""
    reset()
    for chunk in range(0, backlog, 20000):
        load("products", [product(n) for n in range(chunk, min(chunk + 20000, backlog))], "item_id")
    start, _stop, procs = fork_workers(2)
    began = time.perf_counter()
    start.set()
    peak = 0
    while any(p.is_alive() for p in procs):
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):  # it may finish between the two calls
                peak = max(peak, psutil.Process(p.pid).memory_info().rss)
        time.sleep(0.2)
    return peak / 2**20, backlog / (time.perf_counter() - began)


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument(
        "--parts",
        default="rates,ceiling,latency,queue-latency,rss",
        help="comma-separated: rates, ceiling, latency, queue-latency, rss",
    )
    args = parser.parse_args()
    sizes = (
        {"products": 100, "invoices": 30, "rate": 10, "seconds": 1, "backlog": 200, "steady": [(10, 1), (50, 1)]}
        if args.smoke
        else {
            "products": 10000,
            "invoices": 2000,
            "rate": 100,
            "seconds": 20,
            "backlog": 100000,
            "steady": [(100, 20), (500, 10)],
        }
    )
    if connection.vendor != "postgresql":
        sys.exit("bench/apply.py needs PostgreSQL: set DATABASE_URL=postgres://…")
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        lost = run(sizes, set(args.parts.split(",")))
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    if lost:
        sys.exit(f"{lost} webhooks sent were not applied")


def run(sizes: dict, parts: set[str]) -> int:
    """Run the parts and print their figures; returns how many webhooks were lost."""
    print(f"batch_size 100 (default), lease 300 s, poll 1000 ms; {os.cpu_count()} CPUs")
    lost = 0
    measured = rates(sizes) if "rates" in parts else {}
    if "ceiling" in parts:
        ceiling(sizes, measured)
    if "latency" in parts:
        for rate, seconds in sizes["steady"]:
            for wakeups in (True, False):
                result = latency(rate, seconds, wakeups=wakeups)
                lost += result["lost"]
                print(
                    f"webhook → ERP at {rate}/s for {seconds} s, wake-ups {'on' if wakeups else 'off'} "
                    f"({result['sent']} webhooks sent at {result['achieved']:.0f}/s, {result['lost']} lost; "
                    f"gunicorn -w 2, 2 workers): p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, "
                    f"p99 {result['p99']:.1f} ms; beside it, the 202 answer itself: "
                    f"p50 {result['answer_p50']:.1f} ms, p95 {result['answer_p95']:.1f} ms"
                )
    if "queue-latency" in parts:
        result = queue_latency(sizes["rate"], sizes["seconds"])
        print(
            f"queue insert → ERP commit at {sizes['rate']}/s for {sizes['seconds']} s ({result['sent']} rows, "
            f"inserted at {result['achieved']:.0f}/s; 2 workers): "
            f"p50 {result['p50']:.0f} ms, p95 {result['p95']:.0f} ms, p99 {result['p99']:.0f} ms"
        )
    if "rss" in parts:
        peak, rate = rss_while_draining(sizes["backlog"])
        print(f"backlog of {sizes['backlog']} products, 2 workers: peak worker RSS {peak:.0f} MB, {rate:.0f} rows/s")
    return lost


def workloads(sizes: dict) -> list[tuple[str, list[dict], str]]:
    """(entity, objects, id field) for products and for invoices with 5 lines."""
    products = [product(n) for n in range(sizes["products"])]
    invoices = [invoice(n) for n in range(sizes["invoices"])]
    return [("products", products, "item_id"), ("invoices", invoices, "invoice_id")]


def rates(sizes: dict) -> dict[tuple[str, int], float]:
    """Apply rates by (entity, workers), each beside the update_or_create baseline."""
    measured = {}
    for entity, objects, id_field in workloads(sizes):
        base = baseline_rate(entity, objects)
        print(f"{entity:9} baseline update_or_create, 1 process: {base:8.0f} rows/s ({len(objects)} rows)")
        for workers in (1, 2, 4):
            rate = measured[entity, workers] = apply_rate(entity, objects, id_field, workers)
            print(
                f"{entity:9} apply_batch, {workers} worker(s):          {rate:8.0f} rows/s  ({rate / base:.1f}× baseline)"
            )
    return measured


def ceiling(sizes: dict, measured: dict[tuple[str, int], float]) -> None:
    """The apply rate with 1 and 2 workers as a fraction of the bulk-upsert ceiling (1 process).

    Apply rates the `rates` part measured in this run are reused; otherwise they are measured here."""
    for entity, objects, id_field in workloads(sizes):
        reset()
        top = ceiling_rate(entity, objects, id_field)
        applied = {w: measured.get((entity, w)) or apply_rate(entity, objects, id_field, w) for w in (1, 2)}
        print(
            f"{entity:9} ceiling, one upsert per batch, 1 process: {top:8.0f} rows/s ({len(objects)} rows); "
            f"apply rate / ceiling: 1 worker {applied[1] / top:.2f} ({applied[1]:.0f} rows/s), "
            f"2 workers {applied[2] / top:.2f} ({applied[2]:.0f} rows/s)"
        )


PRODUCT = sample("inventory-item.json", "item")
INVOICE = sample("books-invoice.json", "invoice")

if __name__ == "__main__":
    main()
