"""The webhook token never reaches a log line or an error body.

Read from the real output of the servers an operator runs: gunicorn from the root's
gunicorn.conf.py (as the systemd unit starts it), `make run`'s devserver, and runserver, in JSON
and in text. Each serves a migrated SQLite file of the module's own, so the webhooks are stored.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tdscore import devserver
from tests.infra.conftest import ROOT, START_TIMEOUT_SECONDS, TOKEN, free_port, server_env

WRONG_TOKEN = "not-the-token-but-secret-too-93ad"
ITEM = {"item_id": "7001", "name": "Redaction widget"}


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'db.sqlite3'}"
    env = server_env(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return url


def send_tokens(url: str) -> None:
    """A stored webhook with the token in the query, one refused with a wrong one, a probe with both."""
    with httpx.Client(base_url=url, timeout=30) as client:
        stored = client.post(f"/webhooks/products?token={TOKEN}", json=ITEM)
        assert stored.status_code in (200, 202), stored.text  # 200: a repeat, the module's servers share a database
        refused = client.post(f"/webhooks/products?token={WRONG_TOKEN}&operation=upsert", json=ITEM)
        assert refused.status_code == 401
        assert WRONG_TOKEN not in refused.text
        assert client.get(f"/health?token={TOKEN}").status_code == 200


def assert_redacted(log: str, expected_lines: int) -> None:
    assert TOKEN not in log
    assert WRONG_TOKEN not in log
    assert log.count("token=[redacted]") >= expected_lines, log


@pytest.mark.parametrize(("kind", "log_format"), [("gunicorn", "text"), ("runserver", "text"), ("runserver", "json")])
def test_the_request_log_shows_the_token_redacted(start_server, migrated_database, kind, log_format):
    server = start_server(kind, server_env(migrated_database, LOG_FORMAT=log_format))
    send_tokens(server.url)
    server.stop()  # flushes and closes the log
    log = server.output()
    assert_redacted(log, expected_lines=3)
    if log_format == "json":
        request_lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        served = [line for line in request_lines if line["logger"] == "django.server"]
        assert sum("?token=[redacted]" in line["message"] for line in served) == 3  # one per request sent


def test_make_run_logs_no_token(tmp_path, migrated_database):
    # A .env as the first run left it: nothing is generated, so nothing is printed on purpose.
    env_file = tmp_path / ".env"
    simulator_port, port = free_port(), free_port()
    generated = devserver.generated_settings(f"http://127.0.0.1:{simulator_port}")
    generated["TDS_WEBHOOK_TOKEN"] = TOKEN
    env_file.write_text("".join(f"{name}={value}\n" for name, value in generated.items()))
    env = {
        **os.environ,
        "TDS_ENV_FILE": str(env_file),
        "DATABASE_URL": migrated_database,
        "STATIC_ROOT": str(tmp_path / "static"),
        "TDS_Q_WORKERS": "1",
    }
    env.pop("TDS_WEBHOOK_TOKEN", None)
    log = tmp_path / "devserver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tdscore.devserver", "--port", str(port), "--simulator-port", str(simulator_port)]
            + ["--web-workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        send_tokens(url)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as an operator stops `make run`
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log.read_text()
    assert "Starting gunicorn" in output  # the web server's own log is in there
    assert_redacted(output, expected_lines=3)


def spellings_django_accepts(token: str) -> list[str]:
    """Query strings Django reads as `token=<token>`: any character of the name or the value
    percent-encoded (either case of hex), the value spelled out whole, repeated, after `;`…"""
    every = "".join(f"%{ord(c):02X}" for c in token)
    return [
        f"token={token}",
        f"%74oken={token}",
        f"t%6Fken={token}",
        f"t%6fk%65n={token}",
        f"%74%6F%6B%65%6E={every}",
        f"token={every.lower()}",
        f"token=wrong&token={token}",  # the last one counts
        f"operation=upsert&tok%65n={token}",
    ]


@pytest.mark.parametrize(("kind", "log_format"), [("gunicorn", "text"), ("runserver", "text"), ("runserver", "json")])
def test_the_token_under_every_spelling_django_accepts_reaches_no_log(
    start_server, migrated_database, kind, log_format
):
    server = start_server(kind, server_env(migrated_database, LOG_FORMAT=log_format))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for n, query in enumerate(spellings_django_accepts(TOKEN)):
            answer = client.post(f"/webhooks/products?{query}", json={**ITEM, "item_id": f"sp{n}"})
            assert answer.status_code in (200, 202), (query, answer.text)  # accepted: the token was read
    server.stop()
    log = server.output()
    encoded = "".join(f"%{ord(c):02X}" for c in TOKEN)
    for secret in (TOKEN, encoded, encoded.lower(), TOKEN[4:], encoded[12:]):
        assert secret not in log, log
    assert log.count("=[redacted]") >= len(spellings_django_accepts(TOKEN)), log
