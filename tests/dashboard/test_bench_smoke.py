"""bench/console.py --smoke runs, so the benchmark cannot rot (the figures come from a full run by hand)."""

import pytest

from tests.benches import run_smoke

pytestmark = pytest.mark.postgres  # it fills its tables with generate_series


def test_dashboard_bench_smoke_answers_every_path():
    # The same DATABASE_URL: the bench makes and drops its own database.
    printed = run_smoke("console.py", timeout=240)
    for path in ["/health", "/api/dashboard/metrics", "/api/dashboard/dead-letter?group=1", "/metrics"]:
        assert f"\n{path} " in "\n" + printed
