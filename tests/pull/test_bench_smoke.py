"""bench/pull.py --smoke: the benchmark still pulls from the simulator into the ERP, so it cannot rot."""

from tests.benches import bench_database_url, run_smoke


def test_pull_bench_smoke_lands_every_record(tmp_path):
    assert "records/s" in run_smoke("pull.py", "--database-url", bench_database_url(tmp_path))
