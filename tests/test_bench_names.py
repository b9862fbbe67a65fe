"""The benches run gunicorn from bench/ (bench/ingest_app.py), so bench/ comes first on sys.path there:
a bench named like one of our packages would shadow it and the server would not boot."""

from pathlib import Path

from django.apps import apps

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_no_bench_module_shadows_a_package_of_the_project():
    packages = {config.name.split(".")[0] for config in apps.get_app_configs()}
    assert not {path.stem for path in BENCH.glob("*.py")} & packages
