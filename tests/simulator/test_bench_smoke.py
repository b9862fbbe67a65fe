"""bench/simulator.py --smoke runs and lists every item, so the benchmark cannot rot."""

import json

from tests.benches import run_smoke


def test_simulator_bench_smoke_lists_every_item_and_reports_both_figures():
    printed = run_smoke("simulator.py", timeout=120)
    assert "every item listed once: True" in printed
    figures = json.loads(printed.strip().splitlines()[-1])
    assert figures["rows_per_second"] > 0 and figures["bare_rows_per_second"] > 0
