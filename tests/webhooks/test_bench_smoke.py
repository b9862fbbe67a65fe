"""bench/ingest.py --smoke: the benchmark still starts gunicorn, loads it and counts, so it cannot rot."""

from tests.benches import bench_database_url, run_smoke


def test_ingest_bench_smoke_loses_nothing(tmp_path):
    printed = run_smoke("ingest.py", "--database-url", bench_database_url(tmp_path))
    assert "lost 0" in printed
    assert "nothing lost, no 5xx: PASS" in printed


def test_ingest_bench_measures_schema_drift_on_and_off_side_by_side(tmp_path):
    printed = run_smoke("ingest.py", "--database-url", bench_database_url(tmp_path), "--schema-drift", "both")
    assert "webhook, drift on (round 1)" in printed and "webhook, drift off (round 1)" in printed
    assert "schema drift on/off: webhook/bare " in printed
    assert "nothing lost, no 5xx: PASS" in printed
