"""Running a benchmark's `--smoke` mode from a test, so no benchmark can rot unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection


def bench_database_url(tmp_path: Path) -> str:
    """A database of the bench's own beside the test database: on PostgreSQL a sibling the bench
    creates and drops, on SQLite a file in `tmp_path`."""
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        user = db["USER"] or "postgres"
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        return f"postgres://{user}{password}@{host}:{port}/tds_bench_smoke_{os.getpid()}"
    return f"sqlite:///{tmp_path / 'bench.sqlite3'}"


def run_smoke(script: str, *args: str, timeout: float = 180) -> str:
    """Run `bench/<script> --smoke`, fail with its output if it fails, and return what it printed."""
    done = subprocess.run(
        [sys.executable, f"bench/{script}", "--smoke", *args],
        cwd=Path(settings.BASE_DIR),
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return done.stdout
