"""bench/apply_batch.py --smoke runs, so the benchmark cannot rot."""

from __future__ import annotations

import subprocess
import sys

from tests.handlers.conftest import ROOT


def test_apply_batch_bench_smoke_applies_every_row(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "bench/apply_batch.py",
            "--smoke",
            "--database-url",
            f"sqlite:///{tmp_path / 'bench.sqlite3'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "products             update  apply_batch" in done.stdout
    assert "invoices (5 lines)   update  apply_batch" in done.stdout
