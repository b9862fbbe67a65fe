"""bench/ingest.py --smoke: the benchmark still starts gunicorn, loads it and counts, so it cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def bench_database_url(tmp_path: Path) -> str:
    # Its own database next to the test database: on PostgreSQL a sibling the bench creates and
    # drops, on SQLite a file of its own.
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        user = db["USER"] or "postgres"
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/tds_bench_smoke_{os.getpid()}"
    return f"sqlite:///{tmp_path / 'bench.sqlite3'}"


def test_ingest_bench_smoke_loses_nothing(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/ingest.py", "--smoke", "--database-url", bench_database_url(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lost 0" in result.stdout
    assert "nothing lost, no 5xx: PASS" in result.stdout
