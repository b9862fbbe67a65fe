"""Webhook ingest benchmark: accepted webhooks/s and latency against a bare ORM insert.

Starts gunicorn (sync workers) on its own database, then from threads on 127.0.0.1 (http.client,
keep-alive where the server allows it) posts unique ~2 KB Zoho item payloads signed with
X-TDS-Signature, at N connections for D seconds, alternating with the same load on a bare view that
inserts one row through the ORM (bench/ingest_app.py), so both figures come from the same run.
After the warm-up, PostgreSQL gets the VACUUM ANALYZE autovacuum would have run (--no-vacuum skips it).
Then an open-loop burst at 10x the steady rate for B seconds checks that nothing is lost: every
2xx answer is one inbox row and one queue row, and no answer is a 5xx.

Targets: webhook req/s >= 0.7 x bare; webhook p99 < 50 ms at 16 connections; burst loses nothing.
With `--schema-drift both`, each round measures the webhook with schema drift detection on and off
(config `schema_drift_enabled`, switched in the database between the halves, the order alternating by
round): the two webhook/bare ratios must be within 0.03.

    .venv/bin/python bench/ingest.py                      # full run, PostgreSQL database tdscore_bench_ingest
    .venv/bin/python bench/ingest.py --smoke --database-url sqlite:////tmp/bench.sqlite3
    .venv/bin/python bench/ingest.py --schema-drift both  # drift detection on and off, side by side

Exit status: 0 when nothing was lost and no 5xx was answered; 1 otherwise (the speed targets are
reported, not enforced: the machine is shared and its figures vary).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import itertools
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "zohosim" / "samples" / "books-item.json"
SECRET = "bench-signature-secret"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tdscore_bench_ingest"
WEBHOOK_PATH, BARE_PATH = "/webhooks/products", "/bench/bare"
# The server's processes reread the configuration after TDS_CONFIG_CACHE_SECONDS (1 s): wait longer.
CONFIG_SETTLE_SECONDS = 1.5
DRIFT_RATIO_TOLERANCE = 0.03


# --- Payloads ----------------------------------------------------------------------------------


class Payloads:
    """Unique bodies (a new item_id each) in Zoho's envelope, signed as a sender with the secret would."""

    def __init__(self, run_tag: str):
        self.item = json.loads(SAMPLE.read_text())["item"]
        self.run_tag = run_tag
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def next(self) -> tuple[bytes, dict[str, str]]:
        with self.lock:
            n = next(self.counter)
        item = {**self.item, "item_id": f"{self.run_tag}{n:09d}", "name": f"Bench item {n}"}
        body = json.dumps({"code": 0, "message": "success", "item": item}, separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-TDS-Signature": signature}


# --- Load --------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers only
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # connection errors and timeouts: requests with no answer
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, status: int | None, latency: float) -> None:
        with self.lock:
            if status is None:
                self.errors += 1
                return
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                self.latencies.append(latency)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        return (
            f"{self.name:<28} {self.rate:8.0f} req/s  p50 {self.percentile(0.5):6.1f} ms  "
            f"p99 {self.percentile(0.99):6.1f} ms  2xx {self.ok}  5xx {self.server_errors}  "
            f"other {sum(self.statuses.values()) - self.ok - self.server_errors}  no answer {self.errors}"
        )


def _send(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> int | None:
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        response.read()
        if response.will_close:
            conn.close()  # gunicorn's sync workers close after each answer; http.client reopens
        return response.status
    except (OSError, http.client.HTTPException):
        conn.close()
        return None


def closed_loop(name: str, port: int, path: str, payloads: Payloads, connections: int, seconds: float) -> Result:
    """Each connection sends its next request as soon as the last is answered."""
    result = Result(name)
    deadline = time.perf_counter() + seconds

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < deadline:
            body, headers = payloads.next()
            started = time.perf_counter()
            status = _send(conn, path, body, headers)
            result.record(status, time.perf_counter() - started)
        conn.close()

    started = time.perf_counter()
    _run_threads(run, connections)
    result.seconds = time.perf_counter() - started
    return result


def open_loop(name: str, port: int, path: str, payloads: Payloads, rate: float, seconds: float) -> Result:
    """Requests are due at a fixed rate whatever the server does; latency counts from when each was
    due, so a server falling behind shows in p99 rather than slowing the sender down."""
    result = Result(name)
    total = int(rate * seconds)
    schedule = itertools.count()
    lock = threading.Lock()
    start = time.perf_counter() + 0.05

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next(schedule)
            if i >= total:
                break
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            body, headers = payloads.next()
            status = _send(conn, path, body, headers)
            result.record(status, time.perf_counter() - due)
        conn.close()

    _run_threads(run, min(64, max(2, total)))
    result.seconds = time.perf_counter() - start
    return result


def _run_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- Database and server -----------------------------------------------------------------------


class Database:
    def __init__(self, url: str):
        self.url = url
        parts = urlsplit(url)
        self.is_postgres = parts.scheme.startswith("postgres")
        self.name = parts.path.lstrip("/") if self.is_postgres else parts.path[1:]
        self.parts = parts

    def _admin(self):
        import psycopg

        return psycopg.connect(self.parts._replace(path="/postgres", query="").geturl(), autocommit=True)

    def create(self) -> None:
        if self.is_postgres:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{self.name}"')
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(self.name + suffix).unlink(missing_ok=True)
        env = {**os.environ, "DATABASE_URL": self.url}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    def drop(self) -> None:
        if self.is_postgres:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def count(self, sql: str) -> int:
        if self.is_postgres:
            import psycopg

            # Options such as ?conn_max_age=60 are Django's (django-environ), not libpq's.
            with psycopg.connect(self.parts._replace(query="").geturl()) as conn:
                return conn.execute(sql).fetchone()[0]
        with sqlite3.connect(self.name) as conn:
            return conn.execute(sql).fetchone()[0]

    def vacuum_analyze(self) -> bool:
        """Do what autovacuum does on a production server; this CI server runs with it off
        (/etc/postgresql/15/main/conf.d/90-ci.conf). Never vacuumed, the queue's partial indexes
        still look empty to the planner, which then picks the claim index for the supersede and
        walks the entity's whole backlog on every webhook (docs/BENCHMARKS.md, old and new code
        alike). SQLite has no autovacuum to stand in for."""
        if not self.is_postgres:
            return False
        import psycopg

        with psycopg.connect(self.parts._replace(query="").geturl(), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        return True

    def set_config(self, key: str, value) -> None:
        """Change a runtime configuration row as the admin would; the server sees it within a second."""
        sql = "UPDATE tds_configuration SET value = {} WHERE key = {}"
        if self.is_postgres:
            import psycopg

            with psycopg.connect(self.parts._replace(query="").geturl(), autocommit=True) as conn:
                conn.execute(sql.format("%s::jsonb", "%s"), [json.dumps(value), key])
        else:
            with sqlite3.connect(self.name) as conn:
                conn.execute(sql.format("?", "?"), [json.dumps(value), key])

    def counts(self) -> tuple[int, int]:
        inbox = self.count("SELECT count(*) FROM tds_inbox_events WHERE entity = 'products'")
        queue = self.count("SELECT count(*) FROM tds_sync_queue WHERE source = 'webhook'")
        return inbox, queue


class Server:
    """gunicorn on a socket this process binds (port 0), so there is no race for a free port."""

    def __init__(self, database_url: str, workers: int):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=2048)
        self.port = self.sock.getsockname()[1]
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "TDS_WEBHOOK_SECRET": SECRET,
            "DEBUG": "False",
            "LOG_LEVEL": "WARNING",
        }
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            # The bench's own settings below, not the root's gunicorn.conf.py (gthread, access log).
            "--config",
            os.devnull,
            "--bind",
            f"fd://{self.sock.fileno()}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--pythonpath",
            str(ROOT / "bench"),
            "--chdir",
            str(ROOT),
            "--log-level",
            "warning",
            "ingest_app:application",
        ]
        self.process = subprocess.Popen(command, env=env, pass_fds=[self.sock.fileno()])

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /health in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.sock.close()


# --- The run -----------------------------------------------------------------------------------


def chunked_bodies_are_limited(server: Server, payloads: Payloads) -> bool:
    """Through the real server: a chunked body (no Content-Length) is judged while it is read."""
    body, headers = payloads.next()
    headers = {**headers, "Transfer-Encoding": "chunked"}
    answers = []
    for chunks in ([body[:100], body[100:]], [b"x" * 65536] * 17):  # ~2 KB, then 1 MiB + 64 KiB
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("POST", WEBHOOK_PATH, body=iter(chunks), headers=headers, encode_chunked=True)
            answers.append(conn.getresponse().status)
        except (OSError, http.client.HTTPException) as exc:
            answers.append(type(exc).__name__)
        finally:
            conn.close()
    print(f"chunked bodies: {answers[0]} under the limit, {answers[1]} over it (expected 202, 413)")
    return answers == [202, 413]


def measure(args, server: Server, database: Database) -> bool:
    tag = f"{int(time.time()) % 100000:05d}"
    payloads = Payloads(tag)
    print(f"gunicorn {args.workers} sync workers on {database.url.split('@')[-1]}, {args.connections} connections")
    # The server inherits this environment: say which side of the switch this run measured.
    print(f"TDS_DB_PREPARED_STATEMENTS={os.environ.get('TDS_DB_PREPARED_STATEMENTS', 'true (default)')}")
    # TDS_DB_POOL_MAX=0 with ?conn_max_age=60 in the URL is the pool-less setting as it was before.
    print(f"TDS_DB_POOL_MAX={os.environ.get('TDS_DB_POOL_MAX', '4 (default)')}")
    chunked_ok = chunked_bodies_are_limited(server, payloads)
    for path in (BARE_PATH, WEBHOOK_PATH):  # warm both: connections, imports, caches
        closed_loop("warm-up", server.port, path, payloads, args.connections, args.warmup)
    if args.vacuum and database.vacuum_analyze():
        print("VACUUM ANALYZE after the warm-up, as autovacuum would have (it is off on this server)")
    bare, hooks = [], []
    sides = {"on": [True], "off": [False], "both": [True, False]}[args.schema_drift]
    by_side: dict[bool, list[Result]] = {side: [] for side in sides}
    drift_now = True  # as migrate seeds it
    for round_no in range(1, args.rounds + 1):
        bare.append(
            closed_loop(
                f"bare ORM insert (round {round_no})", server.port, BARE_PATH, payloads, args.connections, args.duration
            )
        )
        print(bare[-1].line(), flush=True)
        # Alternating which side goes first, so neither always meets the warmer server.
        for enabled in sides if round_no % 2 else sides[::-1]:
            if enabled != drift_now:
                database.set_config("schema_drift_enabled", enabled)
                time.sleep(CONFIG_SETTLE_SECONDS)
                drift_now = enabled
            name = f"webhook, drift {'on' if enabled else 'off'} (round {round_no})"
            by_side[enabled].append(
                closed_loop(name, server.port, WEBHOOK_PATH, payloads, args.connections, args.duration)
            )
            hooks.append(by_side[enabled][-1])
            print(hooks[-1].line(), flush=True)
    bare_rate = statistics.mean(r.rate for r in bare)
    hook_rate = statistics.mean(r.rate for r in by_side[sides[0]])
    hook_p99 = max(r.percentile(0.99) for r in hooks)
    ratio = hook_rate / bare_rate if bare_rate else 0.0
    print(
        f"webhook/bare = {hook_rate:.0f}/{bare_rate:.0f} = {ratio:.2f} (target >= 0.70): {'PASS' if ratio >= 0.7 else 'MISS'}"
    )
    print(f"webhook p99 = {hook_p99:.1f} ms (target < 50 ms): {'PASS' if hook_p99 < 50 else 'MISS'}")
    if len(sides) > 1:
        on, off = (statistics.mean(r.rate for r in by_side[side]) / bare_rate if bare_rate else 0.0 for side in sides)
        close = abs(on - off) <= DRIFT_RATIO_TOLERANCE
        print(
            f"schema drift on/off: webhook/bare {on:.3f} / {off:.3f}, difference {abs(on - off):.3f} "
            f"(target <= {DRIFT_RATIO_TOLERANCE}): {'PASS' if close else 'MISS'}"
        )

    steady = args.steady_rate or max(1.0, hook_rate / args.burst_factor)
    burst_rate = steady * args.burst_factor
    before = database.counts()
    burst = open_loop(
        f"burst {burst_rate:.0f}/s x {args.burst_seconds:g} s",
        server.port,
        WEBHOOK_PATH,
        payloads,
        burst_rate,
        args.burst_seconds,
    )
    after = database.counts()
    print(burst.line())
    inbox_added, queue_added = after[0] - before[0], after[1] - before[1]
    lost = burst.ok - inbox_added
    print(
        f"burst: steady {steady:.0f}/s x {args.burst_factor:g}; sent {int(burst_rate * args.burst_seconds)}, "
        f"2xx {burst.ok}, inbox rows +{inbox_added}, queue rows +{queue_added}, lost {lost}, "
        f"5xx {burst.server_errors}, no answer {burst.errors}"
    )
    sound = lost == 0 and queue_added == inbox_added and burst.server_errors == 0 and burst.errors == 0
    sound = sound and all(r.server_errors == 0 and r.errors == 0 for r in bare + hooks) and hook_rate > 0
    sound = sound and chunked_ok
    print("nothing lost, no 5xx: PASS" if sound else "LOSS OR 5xx: FAIL")
    return sound


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="its own database: dropped and created")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured round and endpoint")
    parser.add_argument("--rounds", type=int, default=2, help="bare/webhook alternations, averaged")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--burst-seconds", type=float, default=10.0)
    parser.add_argument("--burst-factor", type=float, default=10.0)
    parser.add_argument(
        "--steady-rate",
        type=float,
        default=0.0,
        help="webhooks/s of normal traffic (default: measured capacity / factor)",
    )
    parser.add_argument(
        "--no-vacuum",
        dest="vacuum",
        action="store_false",
        help="skip the VACUUM ANALYZE after the warm-up: tables as a server without autovacuum leaves them",
    )
    parser.add_argument(
        "--schema-drift",
        choices=["on", "off", "both"],
        default="on",
        help="schema drift detection while the webhook is measured; both: on and off side by side each round",
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database for inspection")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks the bench still works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.workers, args.connections, args.duration, args.rounds, args.warmup = 2, 2, 1.0, 1, 0.3
        args.burst_seconds, args.steady_rate = 1.0, args.steady_rate or 2.0
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGTERM stops as Ctrl-C does: the finally blocks stop gunicorn and drop the database.
    signal.signal(signal.SIGTERM, _interrupt)
    database = Database(args.database_url)
    print("creating and migrating the bench database…", flush=True)
    database.create()
    try:
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
