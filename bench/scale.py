"""History at scale: the same figures on an empty database and on one holding years of history.

In one run, on a scratch PostgreSQL database (created and dropped here), each figure is measured
twice: on the empty database, then after loading 5,000,000 finished rows each into the inbox, the
queue and the audit trail (COPY, the recorded Zoho item's real size, spread over 90 days; inbox and
queue retention set to 120 days, as an operator who keeps four months would) and 30 days of
per-minute metrics, followed by the VACUUM ANALYZE autovacuum would run. The figures:

- ingest: webhook req/s over a bare ORM insert on the same gunicorn (bench/ingest.py), closed loop;
- apply: queue rows applied per second by one drainer (sync.worker.drain) from a backlog;
- latency: webhook received -> ERP committed, p95, at a steady rate with a `process_queue` drainer;
- dashboard, /metrics: p95 of a viewer's GETs through gunicorn;
- check_alerts: one alert round (alerts.alert_round.run), median of three;
- cleanup: expired rows deleted per second by one `cleanup` pass (the same expired rows, 130 days
  old, on both databases).

Target: every figure with history >= 0.8 x the same figure empty (rates: history / empty; times:
empty / history).

    flock /tmp/bench.lock .venv/bin/python bench/scale.py            # 5,000,000 rows a table
    .venv/bin/python bench/scale.py --rows 500000                      # a smaller history
    .venv/bin/python bench/scale.py --smoke                            # seconds; tests/infra/test_bench_scale.py

PostgreSQL only. Exit 0 when every webhook was answered 2xx and every change applied (the 0.8 target
is reported, not enforced, so a loaded machine cannot fail the smoke run); 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import harness
from console import ENTITIES, fill_rollups, operator
from ingest import BARE_PATH, SECRET, WEBHOOK_PATH, Payloads, Server, closed_loop, open_loop

TARGET = 0.8
SAMPLE = harness.ROOT / "zohosim" / "samples" / "books-item.json"
HISTORY_DAYS = 90
RETENTION_DAYS = 120  # inbox and queue kept this long here, so the 90 days of history all stay
EXPIRED_DAYS = 130  # the rows each cleanup pass deletes


@dataclass(frozen=True)
class Sizes:
    rows: int  # history rows per table
    metric_days: int
    seconds: float  # per ingest round and for the latency run
    connections: int
    rate: float  # webhooks/s for the latency run
    backlog: int  # rows the apply figure drains
    expired: int  # rows the cleanup figure deletes
    requests: int  # GETs per page


FULL = Sizes(5_000_000, 30, 8.0, 8, 50.0, 5_000, 20_000, 40)
SMOKE = Sizes(2_000, 1, 1.0, 2, 10.0, 200, 200, 5)


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    higher_is_better: bool


FIGURES = [
    Figure("ingest webhook/bare", "ratio", True),
    Figure("ingest webhooks", "req/s", True),
    Figure("apply", "rows/s", True),
    Figure("webhook -> ERP p95", "ms", False),
    Figure("/dashboard/ p95", "ms", False),
    Figure("/metrics p95", "ms", False),
    Figure("check_alerts round", "ms", False),
    Figure("cleanup pass", "rows/s", True),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    parser.add_argument("--rows", type=int, help=f"history rows per table (default {FULL.rows:,})")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks the bench still works")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    if args.rows:
        sizes = Sizes(args.rows, *[getattr(sizes, f) for f in list(Sizes.__dataclass_fields__)[1:]])
    # One key for this process and the servers it starts: the viewer's session is signed here.
    os.environ.setdefault("SECRET_KEY", f"bench-scale-{uuid.uuid4().hex}")
    with harness.throwaway_database(args.database_url):
        return run(sizes)


def run(sizes: Sizes) -> int:
    from django.db import connection

    from sync import retention
    from sync.config_keys import INBOX_RETENTION_DAYS, QUEUE_RETENTION_DAYS
    from tdscore import config

    if connection.vendor != "postgresql":
        print("bench/scale.py measures PostgreSQL only")
        return 1
    config.update_many({INBOX_RETENTION_DAYS.name: RETENTION_DAYS, QUEUE_RETENTION_DAYS.name: RETENTION_DAYS})
    with connection.cursor() as cursor:
        settle(cursor)
    headers = operator()
    url = database_url()
    server = Server(url, workers=2)  # one gunicorn for both databases: the same warm workers
    try:
        server.wait_ready()
        print(f"empty database {connection.settings_dict['NAME']}", flush=True)
        empty, sound = measure(sizes, server, url, headers, retention)
        print(f"loading {sizes.rows:,} rows each into the inbox, the queue and the audit trail …", flush=True)
        began = time.perf_counter()
        load_history(sizes)
        print(f"loaded in {time.perf_counter() - began:.0f} s: {describe()}", flush=True)
        history, sound_history = measure(sizes, server, url, headers, retention)
    finally:
        server.stop()
    report(sizes, empty, history)
    return 0 if sound and sound_history else 1


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


# --- The measurements ----------------------------------------------------------------------------


def measure(
    sizes: Sizes, server: Server, url: str, headers: dict[str, str], retention
) -> tuple[dict[str, float], bool]:
    """Every figure once; and whether every webhook was answered and applied."""
    figures: dict[str, float] = {}
    payloads = Payloads(uuid.uuid4().hex[:6])
    for path in (BARE_PATH, WEBHOOK_PATH):  # warm both after the load: connections, plans, caches
        closed_loop("warm-up", server.port, path, payloads, sizes.connections, min(1.0, sizes.seconds))
    bare = closed_loop("bare", server.port, BARE_PATH, payloads, sizes.connections, sizes.seconds)
    hooks = closed_loop("webhook", server.port, WEBHOOK_PATH, payloads, sizes.connections, sizes.seconds)
    figures["ingest webhook/bare"] = hooks.rate / bare.rate if bare.rate else 0.0
    figures["ingest webhooks"] = hooks.rate
    sound = hooks.server_errors == 0 and hooks.errors == 0
    drain_all()  # the ingest rounds' rows: applied before the apply figure starts from a known backlog
    figures["apply"], applied = apply_rate(sizes.backlog)
    sound = sound and applied
    figures["webhook -> ERP p95"], answered = latency(server.port, sizes, url)
    sound = sound and answered
    figures["/dashboard/ p95"] = page_p95(server.port, "/dashboard/", headers, sizes.requests)
    figures["/metrics p95"] = page_p95(server.port, "/metrics", headers, sizes.requests)
    figures["check_alerts round"] = alert_round_ms()
    figures["cleanup pass"] = cleanup_rate(sizes.expired, retention)
    for figure in FIGURES:
        print(f"  {figure.name:<22} {figures[figure.name]:10.2f} {figure.unit}", flush=True)
    return figures, sound


def drain_all() -> None:
    from sync import worker

    worker.drain(None, worker_id=worker.new_worker_id("scale"), once=True)


def apply_rate(rows: int) -> tuple[float, bool]:
    """A backlog of `rows` new product versions, queued as webhooks leave them, drained by one worker."""
    from django.utils import timezone

    from sync.models import InboxEvent, QueueItem
    from sync.payloads import content_hash

    item = json.loads(SAMPLE.read_text())["item"]
    tag, now = uuid.uuid4().hex[:6], timezone.now()
    objects = [{**item, "item_id": f"apply-{tag}-{n}", "name": f"Scale item {n}"} for n in range(rows)]
    events = InboxEvent.objects.bulk_create(
        [
            InboxEvent(
                entity="products",
                object_id=o["item_id"],
                source=InboxEvent.Source.TOKEN,
                method="POST",
                raw_body=json.dumps({"item": o}).encode(),
                idempotency_key=f"scale-apply:{o['item_id']}",
                content_hash=content_hash(o),
                received_at=now,
            )
            for o in objects
        ],
        batch_size=2000,
    )
    QueueItem.objects.bulk_create(
        [
            QueueItem(
                entity="products",
                object_id=o["item_id"],
                version=now - timedelta(minutes=1),
                payload=o,
                content_hash=content_hash(o),
                source=QueueItem.Source.WEBHOOK,
                inbox_event=event,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for o, event in zip(objects, events, strict=True)
        ],
        batch_size=2000,
    )
    began = time.perf_counter()
    drain_all()
    elapsed = time.perf_counter() - began
    done = QueueItem.objects.filter(object_id__startswith=f"apply-{tag}-", status=QueueItem.Status.COMPLETED).count()
    return rows / elapsed, done == rows


def latency(port: int, sizes: Sizes, url: str) -> tuple[float, bool]:
    """Webhooks at a steady rate while a `process_queue` drainer (wake-ups on) applies them."""
    from sync.models import QueueItem, WorkerHeartbeat

    env = {**os.environ, "DATABASE_URL": url, "TDS_WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "WARNING"}
    drainer = subprocess.Popen(
        [sys.executable, "manage.py", "process_queue"], cwd=harness.ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not WorkerHeartbeat.objects.filter(pid=drainer.pid).exists():  # up and listening
            if time.monotonic() > deadline or drainer.poll() is not None:
                raise RuntimeError("the process_queue drainer did not start")
            time.sleep(0.1)
        tag = uuid.uuid4().hex[:6]
        sent = open_loop("steady", port, WEBHOOK_PATH, Payloads(tag), sizes.rate, sizes.seconds)
        rows = QueueItem.objects.filter(object_id__startswith=tag)
        deadline = time.monotonic() + 60
        while rows.exclude(status=QueueItem.Status.COMPLETED).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        waits = sorted(
            (finished - received).total_seconds() * 1000
            for finished, received in rows.filter(status=QueueItem.Status.COMPLETED).values_list(
                "finished_at", "inbox_event__received_at"
            )
        )
    finally:
        drainer.terminate()
        drainer.wait(timeout=30)
    applied = len(waits) == sent.ok and sent.server_errors == 0 and sent.errors == 0
    if not applied:
        print(f"  latency run: sent {sent.ok} answered 2xx, {len(waits)} applied, {sent.server_errors} 5xx")
    return (statistics.quantiles(waits, n=100)[94] if len(waits) > 1 else float("nan")), applied


def page_p95(port: int, path: str, headers: dict[str, str], requests: int) -> float:
    times = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for n in range(requests + 2):
        began = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        if n >= 2:  # the first two warm the worker
            times.append((time.perf_counter() - began) * 1000)
    conn.close()
    return statistics.quantiles(times, n=20)[18] if len(times) > 1 else times[0]


def alert_round_ms() -> float:
    from alerts import alert_round

    rounds = []
    for _ in range(3):
        began = time.perf_counter()
        alert_round.run()
        rounds.append((time.perf_counter() - began) * 1000)
    return statistics.median(rounds)


def cleanup_rate(rows: int, retention) -> float:
    """`rows` finished webhook changes EXPIRED_DAYS old, deleted by one cleanup pass."""
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM tds_inbox_events")
        (first,) = cursor.fetchone()
        copy_history(cursor, first + 1, rows, days=0, offset=timedelta(days=EXPIRED_DAYS), audit=False)
    began = time.perf_counter()
    result = retention.cleanup(now=timezone.now())
    elapsed = time.perf_counter() - began
    deleted = result.counts.get("inbox", 0) + result.counts.get("queue", 0)
    if deleted < 2 * rows:
        raise RuntimeError(f"cleanup deleted {result.counts}, expected {rows:,} inbox and {rows:,} queue rows")
    return deleted / elapsed


# --- The history -----------------------------------------------------------------------------------


def load_history(sizes: Sizes) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM tds_inbox_events")
        (first,) = cursor.fetchone()
        with indexes_built_after(cursor, ["tds_inbox_events", "tds_sync_queue", "tds_audit_trail"]):
            copy_history(cursor, first + 1, sizes.rows, days=HISTORY_DAYS, offset=timedelta(days=1), audit=True)
        cursor.execute("SELECT date_trunc('minute', now())")
        (now,) = cursor.fetchone()
        fill_rollups(cursor, sizes.metric_days, now)
    connection.close()
    with connection.cursor() as cursor:  # VACUUM cannot run inside a transaction block
        cursor.execute("VACUUM ANALYZE")
        settle(cursor)


def settle(cursor) -> None:
    """Write out what the load left dirty before measuring: without it the first figures after a
    load of gigabytes pay for the checkpoint it forces (both databases get one, for the same start)."""
    cursor.execute("CHECKPOINT")


@contextmanager
def indexes_built_after(cursor, tables: list[str]) -> Iterator[None]:
    """Load as a restore does: the secondary indexes dropped during the COPY and built once after,
    the same definitions (unique constraints and primary keys stay, so they are checked row by row)."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        [tables],
    )
    definitions = cursor.fetchall()
    for name, _ in definitions:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    cursor.execute("SET maintenance_work_mem = '512MB'")
    for _, definition in definitions:
        cursor.execute(definition)


def copy_history(cursor, first: int, rows: int, *, days: int, offset: timedelta, audit: bool) -> None:
    """`rows` webhook changes, each an inbox row, its completed queue row and (with `audit`) its
    audit row, received over `days` days ending `offset` ago, written with COPY."""
    from django.utils import timezone

    item = json.loads(SAMPLE.read_text())["item"]
    end = timezone.now() - offset
    span = timedelta(days=days)
    psycopg_cursor = cursor.cursor
    inbox_columns = (
        "id, entity, object_id, source, method, content_type, headers, raw_body, idempotency_key, content_hash, "
        "duplicate_count, status, error, received_at"
    )
    queue_columns = (
        "id, entity, object_id, version, content_hash, payload, is_summary, operation, source, inbox_event_id, "
        "priority, status, skip_reason, attempts, lease_expiries, next_attempt_at, locked_by, last_error, "
        "created_at, updated_at, finished_at"
    )
    audit_columns = (
        "entity, object_id, operation, before, after, changed_fields, version, source, queue_item_id, "
        "inbox_event_id, at"
    )
    step = 100_000
    for start in range(first, first + rows, step):
        ids = range(start, min(start + step, first + rows))
        stamps = {i: end - span * (first + rows - 1 - i) / max(rows, 1) for i in ids}
        with psycopg_cursor.copy(f"COPY tds_inbox_events ({inbox_columns}) FROM STDIN") as copy:
            for i in ids:
                obj = {**item, "item_id": f"h{i}", "name": f"History item {i}"}
                body = json.dumps({"item": obj}, separators=(",", ":")).encode()
                copy.write_row(
                    (i, ENTITIES[i % len(ENTITIES)], f"h{i}", "token", "POST", "application/json", "{}", body,
                     f"history:{i}", f"{i:064x}", 0, "processed", "", stamps[i])
                )  # fmt: skip
        with psycopg_cursor.copy(f"COPY tds_sync_queue ({queue_columns}) FROM STDIN") as copy:
            for i in ids:
                obj = {**item, "item_id": f"h{i}", "name": f"History item {i}"}
                at = stamps[i]
                copy.write_row(
                    (i, ENTITIES[i % len(ENTITIES)], f"h{i}", at - timedelta(seconds=2), f"{i:064x}", json.dumps(obj),
                     False, "upsert", "webhook", i, 0, "completed", "", 1, 0, at, "", "", at, at,
                     at + timedelta(milliseconds=40))
                )  # fmt: skip
        if audit:
            with psycopg_cursor.copy(f"COPY tds_audit_trail ({audit_columns}) FROM STDIN") as copy:
                for i in ids:
                    row = {"zoho_id": f"h{i}", "name": f"History item {i}", "sku": item.get("sku"), "rate": i % 1000}
                    copy.write_row(
                        (ENTITIES[i % len(ENTITIES)], f"h{i}", "update", json.dumps({**row, "rate": i % 999}),
                         json.dumps(row), '["rate"]', stamps[i] - timedelta(seconds=2), "webhook", i, i,
                         stamps[i] + timedelta(milliseconds=40))
                    )  # fmt: skip
        if rows >= 10 * step:
            print(f"  … {ids.stop - first:,} of {rows:,}", flush=True)
    for table in ("tds_inbox_events", "tds_sync_queue"):
        psycopg_cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


def describe() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        sizes = []
        for table in ("tds_inbox_events", "tds_sync_queue", "tds_audit_trail", "tds_metrics"):
            cursor.execute(f"SELECT count(*), pg_size_pretty(pg_total_relation_size('{table}')) FROM {table}")
            count, size = cursor.fetchone()
            sizes.append(f"{table} {count:,} rows ({size})")
    return ", ".join(sizes)


def report(sizes: Sizes, empty: dict[str, float], history: dict[str, float]) -> None:
    print(f"\n| figure | empty | {sizes.rows:,} rows | ratio | >= {TARGET} |")
    print("|---|---|---|---|---|")
    for figure in FIGURES:
        before, after = empty[figure.name], history[figure.name]
        ratio = (after / before if figure.higher_is_better else before / after) if before and after else 0.0
        verdict = "yes" if ratio >= TARGET else "NO"
        print(f"| {figure.name} ({figure.unit}) | {before:,.2f} | {after:,.2f} | {ratio:.2f} | {verdict} |")


if __name__ == "__main__":
    sys.exit(main())
