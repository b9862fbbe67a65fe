"""bench/pull.py --smoke: the benchmark still pulls from the simulator into the ERP, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.webhooks.test_bench_smoke import bench_database_url

ROOT = Path(__file__).resolve().parents[2]


def test_pull_bench_smoke_lands_every_record(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/pull.py", "--smoke", "--database-url", bench_database_url(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "records/s" in result.stdout
