"""bench/check_alerts.py --smoke runs, so the benchmark cannot rot (the figures come from a full run by hand)."""

import pytest

from tests.benches import bench_database_url, run_smoke

pytestmark = pytest.mark.postgres


def test_alerts_bench_smoke_reports_rounds_and_the_baseline(tmp_path):
    printed = run_smoke("check_alerts.py", "--database-url", bench_database_url(tmp_path), timeout=240)
    for figure in ["seeded", "round 5:", "baseline count(*)", "check_alerts round:", "mass clear:"]:
        assert figure in printed
