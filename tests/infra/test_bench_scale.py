"""bench/scale.py --smoke runs, so the history-at-scale benchmark cannot rot (its figures come from a
full run by hand, docs/BENCHMARKS.md)."""

import pytest

from tests.benches import run_smoke

pytestmark = pytest.mark.postgres


def test_scale_bench_smoke_measures_every_figure_empty_and_with_history():
    printed = run_smoke("scale.py", timeout=240)
    table = [line for line in printed.splitlines() if line.startswith("| ") and "---" not in line]
    assert table[0].startswith("| figure | empty | 2,000 rows | ratio |"), printed
    figures = [line.split(" | ")[0].lstrip("| ") for line in table[1:]]
    assert figures == [
        "ingest webhook/bare (ratio)",
        "ingest webhooks (req/s)",
        "apply (rows/s)",
        "webhook -> ERP p95 (ms)",
        "/dashboard/ p95 (ms)",
        "/metrics p95 (ms)",
        "check_alerts round (ms)",
        "cleanup pass (rows/s)",
    ], printed
    # Every figure measured on both databases: none zero, none missing.
    for line in table[1:]:
        empty, history = (float(cell.replace(",", "")) for cell in line.split(" | ")[1:3])
        assert empty > 0 and history > 0, line
