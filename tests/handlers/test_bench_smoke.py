"""bench/apply_batch.py --smoke runs, so the benchmark cannot rot."""

from tests.benches import bench_database_url, run_smoke


def test_apply_batch_bench_smoke_applies_every_row(tmp_path):
    printed = run_smoke("apply_batch.py", "--database-url", bench_database_url(tmp_path), timeout=120)
    assert "products             update  apply_batch" in printed
    assert "invoices (5 lines)   update  apply_batch" in printed
