"""Real web servers on 127.0.0.1 for the webhook tests that depend on what a server does with the
bytes (chunked bodies, control characters in headers) or on several processes (the throttle)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from tests.webhooks.conftest import TOKENS

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def url_of_test_database() -> str:
    """The URL of the test database, for a server the test starts (PostgreSQL only: SQLite's test
    database lives in memory; those tests get a migrated file of their own, migrated_sqlite())."""
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def migrated_sqlite(directory: Path) -> str:
    url = f"sqlite:///{directory / 'server.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=_env(url), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return url


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TDS_ENV_FILE": os.devnull,
        "DATABASE_URL": database_url,
        "TDS_WEBHOOK_TOKEN": TOKENS[1],
        "SECRET_KEY": "test-servers-secret-key-0123456789abcdefghijklmnop",
        **extra,
    }


COMMANDS = {
    "runserver": lambda port: [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
    "gunicorn": lambda port, workers=1: (
        [sys.executable, "-m", "gunicorn", "tdscore.wsgi", "-b", f"127.0.0.1:{port}"]
        + ["-w", str(workers), "--access-logfile", "-"]
    ),
}


@contextmanager
def running(kind: str, database_url: str, log: Path, *, workers: int = 1, **env: str):
    """`kind` (runserver or gunicorn) serving on a free port; yields the port."""
    port = free_port()
    command = COMMANDS[kind](port) if kind == "runserver" else COMMANDS[kind](port, workers)
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=_env(database_url, **env), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(port, process, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited:\n{log.read_text()}"
        # A connection accepted is enough: with the database down, /health itself may take the
        # pool's whole timeout to answer 503.
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"not listening within {START_SECONDS} s:\n{log.read_text()}")


def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send `head` (request line and headers, without the blank line) and `body` as they are;
    the status and body of the answer. One connection each, closed by us."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def webhook_head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *headers]
    return "\r\n".join(lines).encode("latin-1")


def inbox_rows(database_url: str) -> list[tuple[bytes, str]]:
    """(raw body, user-agent) of every inbox row the server stored, oldest first."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            rows = db.execute("SELECT raw_body, headers FROM tds_inbox_events ORDER BY id").fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT raw_body, headers::text FROM tds_inbox_events ORDER BY id")
            rows = cursor.fetchall()
    return [(bytes(body), json.loads(headers).get("user-agent", "")) for body, headers in rows]
