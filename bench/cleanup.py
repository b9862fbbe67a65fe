"""Retention under load: `manage.py cleanup` deletes 1,000,000 old inbox rows and their
queue rows on PostgreSQL while webhooks keep arriving at a steady rate.

The bench database is filled with N finished webhook changes 30 days old (an inbox row and its
completed queue row each, by INSERT … SELECT FROM generate_series) and given the VACUUM ANALYZE
autovacuum would have run (it is off on this server). gunicorn serves the real webhook view on
127.0.0.1. Its capacity is probed first (closed loop, a few seconds); the steady rate R is a share of
it (`--share`, 0.25) unless `--rate` fixes it, so the webhooks arrive at a rate the server keeps up
with on this shared machine. A paced client posts signed webhooks at R a second (open loop: each
request is due at its time whatever the server does, and its latency counts from then). First R for
B seconds with nothing else running: the baseline. Then the same R while `manage.py cleanup` runs,
until it ends.

Targets: no webhook waits more than 1 s during cleanup, and the webhook rate during cleanup is at
least 0.8 x the baseline rate of the same run; every old row is gone, every new one kept.

    flock /tmp/bench.lock .venv/bin/python bench/cleanup.py                 # 1,000,000 rows, 0.25 x capacity
    flock /tmp/bench.lock .venv/bin/python bench/cleanup.py --smoke         # 2,000 rows, seconds

Exit status: 0 when the old rows are gone, the new ones kept and no webhook failed; 1 otherwise (the
latency and rate targets are reported, not enforced: the machine is shared).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ingest import Database, Payloads, Server, _send, closed_loop

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tdscore_bench_cleanup"
WEBHOOK_PATH = "/webhooks/products"
MAX_WAIT_SECONDS, RATE_SHARE = 1.0, 0.8

FILL_INBOX = """
INSERT INTO tds_inbox_events (entity, object_id, source, method, content_type, headers, raw_body, idempotency_key,
    content_hash, duplicate_count, status, error, received_at)
SELECT 'products', 'old' || g, 'signature', 'POST', 'application/json', '{}'::jsonb,
    convert_to(format('{"item":{"item_id":"old%%s","name":"Old item %%s","sku":"OLD-%%s","rate":10.5,'
        '"status":"active","last_modified_time":"2026-10-01T10:00:00+0000"}}', g, g, g), 'UTF8'),
    'old:' || g, md5(g::text) || md5(g::text), 0, 'processed', '',
    now() - interval '30 days' + g * interval '1 ms'
FROM generate_series(1, %s) AS g
"""
FILL_QUEUE = """
INSERT INTO tds_sync_queue (entity, object_id, version, content_hash, payload, is_summary, operation, source,
    inbox_event_id, priority, status, skip_reason, attempts, lease_expiries, next_attempt_at, locked_by,
    last_error, created_at, updated_at, finished_at)
SELECT entity, object_id, received_at, content_hash, convert_from(raw_body, 'UTF8')::jsonb -> 'item', false,
    'upsert', 'webhook', id, 0, 'completed', '', 1, 0, received_at, '', '', received_at, received_at, received_at
FROM tds_inbox_events WHERE idempotency_key LIKE 'old:%'
"""


@dataclass
class Paced:
    """Answers of an open-loop client: latency from each request's due time."""

    rate: float
    latencies: list[float] = field(default_factory=list)
    failed: int = 0
    started: float = 0.0
    ended: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def answered_rate(self) -> float:
        return len(self.latencies) / (self.ended - self.started) if self.ended > self.started else 0.0

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("nan"))

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def line(self, name: str) -> str:
        return (
            f"{name:<22} {self.answered_rate:7.1f} webhooks/s over {self.ended - self.started:6.1f} s  "
            f"p50 {self.percentile(0.5) * 1000:6.1f} ms  p99 {self.percentile(0.99) * 1000:6.1f} ms  "
            f"max {self.worst * 1000:7.1f} ms  2xx {len(self.latencies)}  failed {self.failed}"
        )


def paced(port: int, payloads: Payloads, rate: float, until: threading.Event, *, minimum: float) -> Paced:
    """Post at `rate` a second until `until` is set (and at least `minimum` seconds)."""
    result = Paced(rate)
    schedule = itertools.count()
    lock = threading.Lock()
    result.started = start = time.perf_counter() + 0.05
    stop_at: list[float] = []

    def due_times():
        while True:
            with lock:
                due = start + next(schedule) / rate
            if due >= start + minimum and until.is_set():
                if not stop_at:
                    stop_at.append(max(due, time.perf_counter()))
                return
            yield due

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for due in due_times():
            time.sleep(max(0.0, due - time.perf_counter()))
            body, headers = payloads.next()
            status = _send(conn, WEBHOOK_PATH, body, headers)
            latency = time.perf_counter() - due
            with result.lock:
                if status is not None and 200 <= status < 300:
                    result.latencies.append(latency)
                else:
                    result.failed += 1
        conn.close()

    # Enough senders that one slow answer never holds back the next due request.
    threads = [threading.Thread(target=run, daemon=True) for _ in range(min(64, max(4, int(rate / 4))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.ended = stop_at[0] if stop_at else time.perf_counter()
    return result


def fill(database: Database, rows: int) -> None:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(database.parts._replace(query="").geturl(), autocommit=True) as conn:
        conn.execute(FILL_INBOX, [rows])
        conn.execute(FILL_QUEUE)
        conn.execute("VACUUM ANALYZE")
    print(f"filled {rows:,} old inbox rows and their queue rows in {time.perf_counter() - started:.1f} s", flush=True)


def old_rows(database: Database) -> tuple[int, int]:
    inbox = database.count("SELECT count(*) FROM tds_inbox_events WHERE idempotency_key LIKE 'old:%'")
    queue = database.count("SELECT count(*) FROM tds_sync_queue WHERE object_id LIKE 'old%'")
    return inbox, queue


def new_rows(database: Database) -> int:
    return database.count("SELECT count(*) FROM tds_inbox_events WHERE idempotency_key NOT LIKE 'old:%'")


def measure(args, server: Server, database: Database) -> bool:
    payloads = Payloads(f"{int(time.time()) % 100000:05d}")
    done, warm = threading.Event(), threading.Event()
    warm.set()  # the warm-up and the baseline stop at their minimum
    capacity = closed_loop("capacity", server.port, WEBHOOK_PATH, payloads, args.connections, args.warmup)
    rate = args.rate or max(1.0, round(capacity.rate * args.share))
    print(
        f"capacity {capacity.rate:.0f} webhooks/s closed-loop at {args.connections} connections; steady rate {rate:g}/s"
    )
    warmup = paced(server.port, payloads, rate, warm, minimum=args.warmup)
    baseline = paced(server.port, payloads, rate, warm, minimum=args.baseline)
    print(baseline.line("baseline (no cleanup)"), flush=True)

    env = {**os.environ, "DATABASE_URL": database.url}
    cleanup_started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "cleanup", "--skip-checks"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []

    def wait_for_cleanup() -> None:
        output.append(process.communicate()[0])
        done.set()

    threading.Thread(target=wait_for_cleanup, daemon=True).start()
    during = paced(server.port, payloads, rate, done, minimum=1.0)
    cleanup_seconds = time.perf_counter() - cleanup_started
    print(during.line("during cleanup"), flush=True)
    deleted = [line for line in output[0].splitlines() if line.startswith("deleted")]
    print(f"cleanup: exit {process.returncode} in {cleanup_seconds:.1f} s — {'; '.join(deleted)}", flush=True)

    left = old_rows(database)
    kept = new_rows(database)
    sent_ok = capacity.ok + sum(len(phase.latencies) for phase in (warmup, baseline, during))
    ratio = during.answered_rate / baseline.answered_rate if baseline.answered_rate else 0.0
    print(f"old rows left: inbox {left[0]}, queue {left[1]} (expected 0, 0)")
    print(f"new webhook rows kept: {kept} of {sent_ok} answered 2xx")
    print(
        f"worst wait during cleanup = {during.worst * 1000:.0f} ms (target <= {MAX_WAIT_SECONDS * 1000:.0f} ms): "
        f"{'PASS' if during.worst <= MAX_WAIT_SECONDS else 'MISS'}"
    )
    print(
        f"webhook rate during/baseline = {during.answered_rate:.1f}/{baseline.answered_rate:.1f} = {ratio:.2f} "
        f"(target >= {RATE_SHARE}): {'PASS' if ratio >= RATE_SHARE else 'MISS'}"
    )
    sound = process.returncode == 0 and left == (0, 0) and kept == sent_ok
    sound = sound and baseline.failed == 0 and during.failed == 0
    print("old rows gone, new rows kept, no webhook failed: PASS" if sound else "FAIL")
    return sound


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="its own database: dropped and created")
    parser.add_argument("--rows", type=int, default=1_000_000, help="old inbox rows (each with its queue row)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="webhooks a second, steady (default: a share of capacity)"
    )
    parser.add_argument("--share", type=float, default=0.25, help="the steady rate as a share of measured capacity")
    parser.add_argument("--connections", type=int, default=8, help="connections of the capacity probe")
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds of webhooks without cleanup")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database for inspection")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks the bench still works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.rate, args.baseline, args.warmup, args.workers = 2000, args.rate or 20.0, 1.5, 0.5, 2
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    database = Database(args.database_url)
    if not database.is_postgres:
        print("bench/cleanup.py measures PostgreSQL: give it a postgres:// --database-url", file=sys.stderr)
        return 2
    print("creating and migrating the bench database…", flush=True)
    database.create()
    try:
        fill(database, args.rows)
        server = Server(args.database_url, args.workers)
        try:
            server.wait_ready()
            return 0 if measure(args, server, database) else 1
        finally:
            server.stop()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    finally:
        if not args.keep_db:
            database.drop()


if __name__ == "__main__":
    sys.exit(main())
