"""bench/simulator.py --smoke runs and lists every item, so the benchmark cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_simulator_bench_smoke_lists_every_item_and_reports_both_figures():
    done = subprocess.run(
        [sys.executable, "bench/simulator.py", "--smoke"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every item listed once: True" in done.stdout
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["rows_per_second"] > 0 and figures["bare_rows_per_second"] > 0
