"""bench/cleanup.py --smoke runs, so the benchmark cannot rot (the figures come from a full run by hand)."""

import pytest

from tests.benches import bench_database_url, run_smoke

pytestmark = pytest.mark.postgres


def test_cleanup_bench_smoke_deletes_old_rows_while_webhooks_arrive(tmp_path):
    printed = run_smoke("cleanup.py", "--database-url", bench_database_url(tmp_path), timeout=240)
    for figure in ["baseline (no cleanup)", "during cleanup", "worst wait during cleanup", "during/baseline"]:
        assert figure in printed
    assert "old rows left: inbox 0, queue 0" in printed
