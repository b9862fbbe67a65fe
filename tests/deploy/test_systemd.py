"""The systemd units in deploy/ are valid as systemd itself reads them (`systemd-analyze verify`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import DEPLOY, REPO, tool

UNITS = sorted((DEPLOY / "systemd").iterdir())


def _installed(tmp_path: Path) -> list[Path]:
    # As docs/OPERATIONS.md installs them, but with this checkout in place of /opt/tdscore, so every
    # ExecStart names a file that exists here and verify can check it is executable.
    env_file = tmp_path / "tdscore.env"
    env_file.write_text("DATABASE_URL=postgres://tdscore@127.0.0.1/tdscore\n")
    out = []
    for unit in UNITS:
        text = unit.read_text().replace("/opt/tdscore", str(REPO)).replace("/etc/tdscore/tdscore.env", str(env_file))
        (tmp_path / unit.name).write_text(text)
        out.append(tmp_path / unit.name)
    return out


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = tool("systemd-analyze")
    result = subprocess.run([analyze, "verify", *map(str, _installed(tmp_path))], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_verify_refuses_a_unit_with_a_missing_program(tmp_path):
    # So the test above means something: verify does check what our units rely on.
    analyze = tool("systemd-analyze")
    unit = next(path for path in _installed(tmp_path) if path.name == "tdscore-web.service")
    unit.write_text(unit.read_text().replace(f"{REPO}/.venv/bin/gunicorn", "/nonexistent/gunicorn"))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode != 0 and "not executable" in result.stderr


@pytest.mark.parametrize("name", ["tdscore-web.service", "tdscore-worker.service"])
def test_services_restart_run_as_a_service_user_and_read_the_environment_file(name):
    text = (DEPLOY / "systemd" / name).read_text()
    assert "Restart=always" in text
    assert "User=tdscore" in text
    assert "EnvironmentFile=/etc/tdscore/tdscore.env" in text


def test_the_web_unit_uses_the_gunicorn_config_that_make_run_uses():
    text = (DEPLOY / "systemd" / "tdscore-web.service").read_text()
    assert "--config /opt/tdscore/gunicorn.conf.py" in text
    assert (REPO / "gunicorn.conf.py").exists()
