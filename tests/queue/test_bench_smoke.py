"""bench/apply.py --smoke runs, so the benchmark cannot rot (the figures come from a full run by hand)."""

import pytest

from tests.benches import run_smoke

pytestmark = pytest.mark.postgres


def test_apply_bench_smoke_runs_and_reports_every_figure():
    # The same DATABASE_URL: the bench makes and drops its own database.
    printed = run_smoke("apply.py", timeout=240)
    for figure in ["baseline update_or_create", "4 worker(s)", "the 202 answer", "queue insert", "peak worker RSS"]:
        assert figure in printed
