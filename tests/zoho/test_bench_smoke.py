"""bench/zoho_client.py --smoke: the benchmark still runs the client against the simulator, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.webhooks.test_bench_smoke import bench_database_url

ROOT = Path(__file__).resolve().parents[2]


def test_zoho_client_bench_smoke_fetches_every_row(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/zoho_client.py", "--smoke", "--database-url", bench_database_url(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "calls/s" in result.stdout
