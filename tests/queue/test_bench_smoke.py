"""bench/apply.py --smoke runs, so the benchmark cannot rot (the figures come from a full run by hand)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.postgres


def test_apply_bench_smoke_runs_and_reports_every_figure():
    result = subprocess.run(
        [sys.executable, "bench/apply.py", "--smoke"],
        cwd=Path(settings.BASE_DIR),
        env=os.environ.copy(),  # the same DATABASE_URL; the bench makes and drops its own database
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for figure in ["baseline update_or_create", "4 worker(s)", "the 202 answer", "queue insert", "peak worker RSS"]:
        assert figure in result.stdout
