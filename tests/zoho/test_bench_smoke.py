"""bench/zoho_client.py --smoke: the benchmark still runs the client against the simulator, so it cannot rot."""

from tests.benches import bench_database_url, run_smoke


def test_zoho_client_bench_smoke_fetches_every_row(tmp_path):
    assert "calls/s" in run_smoke("zoho_client.py", "--database-url", bench_database_url(tmp_path), timeout=120)
