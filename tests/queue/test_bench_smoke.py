"""bench/apply.py --smoke runs, so the benchmark cannot rot (the figures come from a full run by hand)."""

import pytest

from tests.benches import run_smoke

pytestmark = pytest.mark.postgres


def test_apply_bench_smoke_runs_and_reports_every_figure():
    # The same DATABASE_URL: the bench makes and drops its own database.
    printed = run_smoke("apply.py", timeout=240)
    for figure in ["baseline update_or_create", "4 worker(s)", "the 202 answer", "queue insert", "peak worker RSS"]:
        assert figure in printed
    # The apply rate against the bulk-upsert ceiling, for products and for invoices with lines.
    for entity in ("products", "invoices"):
        assert f"{entity:9} ceiling, one upsert per batch" in printed
    assert printed.count("apply rate / ceiling: 1 worker") == 2
    # Webhook → ERP at each steady rate, with wake-ups on and then off (the polling baseline), none lost.
    for wakeups in ("on", "off"):
        assert f"at 10/s for 1 s, wake-ups {wakeups} (10 webhooks" in printed
        assert f"at 50/s for 1 s, wake-ups {wakeups} (50 webhooks" in printed
    assert printed.count(" 0 lost;") == 4
