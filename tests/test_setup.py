"""`make run` for real: the devserver on free ports, against a .env and SQLite file of the test's own."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import psutil
import pytest

from sync import entities
from tdscore import devserver

BASE_DIR = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 50  # migrate + collectstatic + boot; slow on a busy 2-core machine
DRAINER_TIMEOUT_SECONDS = 60  # django-q2 runs its scheduler (the drainer watchdog) every ~30 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Devserver:
    def __init__(self, tmp_path: Path, *, database_url: str | None = None, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "devserver.log"
        self.database = tmp_path / "db.sqlite3"
        self.env = {
            **os.environ,
            "TDS_ENV_FILE": str(tmp_path / ".env"),
            "DATABASE_URL": database_url or f"sqlite:///{self.database}",
            "STATIC_ROOT": str(tmp_path / "static"),
            "TDS_Q_WORKERS": "1",
        }
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tdscore.devserver", "--port", str(self.port)]
                + ["--simulator-port", str(free_port()), "--web-workers", "1", *args],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"devserver exited early:\n{self.output()}"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        pytest.fail(f"no /health 200 within {START_TIMEOUT_SECONDS} s:\n{self.output()}")

    def wait_for_a_drainer(self) -> None:
        """Until the watchdog schedule has started a drain task and it has beaten once."""
        deadline = time.monotonic() + DRAINER_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            with closing(sqlite3.connect(self.database)) as database:
                if database.execute("SELECT count(*) FROM tds_worker_heartbeats").fetchone()[0]:
                    time.sleep(0.5)  # into its drain loop
                    return
            time.sleep(0.3)
        pytest.fail(f"no drainer within {DRAINER_TIMEOUT_SECONDS} s:\n{self.output()}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def cleanup(self, leftovers: list[psutil.Process]) -> None:
        """Whatever the test's outcome, leave no process behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for process in leftovers:
            if process.is_running():
                process.kill()


@pytest.fixture
def running_devserver(tmp_path):
    server = Devserver(tmp_path)
    seen: list[psutil.Process] = []
    try:
        server.wait_healthy()
        seen.extend(server.descendants())
        yield server
    finally:
        server.cleanup(seen + (server.descendants() if server.process.poll() is None else []))


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    client.get("/admin/login/")
    return client.post(
        "/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
            "next": "/admin/",
        },
    )


def test_make_run_serves_admin_and_health_and_ctrl_c_stops_everything(running_devserver):
    server = running_devserver
    output = server.output()
    assert "TDS_WEBHOOK_TOKEN=" in output  # what it generated is printed
    username, password = re.search(r"username: (\S+)\s+password: (\S+)", output).groups()

    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ok"}
        login_page = client.get("/admin/login/")
        assert login_page.status_code == 200
        stylesheet = re.search(r'href="(/static/admin/css/[^"]+\.css)"', login_page.text).group(1)
        css = client.get(stylesheet)
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "body" in css.text

        response = login(client, username, password)
        assert response.status_code == 302, response.text[:500]
        assert client.get("/admin/").status_code == 200

    children = server.descendants()
    assert len(children) >= 3  # gunicorn master and worker, qcluster and its processes
    server.wait_for_a_drainer()  # the case that took 15-17 s: Ctrl-C while a drain task runs
    started = time.monotonic()
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=25) == 0
    stopped_in = time.monotonic() - started
    assert stopped_in < 5, f"stopped in {stopped_in:.1f} s:\n{server.output()[-3000:]}"
    assert "killing it" not in server.output()
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], f"left running: {alive}"
    # Set up for the web server and the cluster writing at once.
    with closing(sqlite3.connect(server.database)) as database:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# The supervisor alone, over stand-in children: a shell that leaves a grandchild in its process
# group (as gunicorn and qcluster leave workers) and a plain sleep.
SUPERVISOR = """
import sys
from sync import entities
from tdscore import devserver
stop = devserver.catch_stop_signals()
children = [devserver.start("shell", ["sh", "-c", "sleep 60 & wait"]), devserver.start("sleep", ["sleep", "60"])]
print(children[1].process.pid, flush=True)
sys.exit(devserver.supervise(children, stop))
"""


@pytest.fixture
def supervisor():
    process = subprocess.Popen([sys.executable, "-c", SUPERVISOR], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True)
    sleep_pid = int(process.stdout.readline())
    deadline = time.monotonic() + 10
    while len(psutil.Process(process.pid).children(recursive=True)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    descendants = psutil.Process(process.pid).children(recursive=True)
    assert len(descendants) == 3, descendants
    yield process, sleep_pid, descendants
    if process.poll() is None:
        process.kill()
    for leftover in descendants:
        if leftover.is_running():
            leftover.kill()


def test_sigterm_stops_every_child_and_grandchild(supervisor):
    process, _, descendants = supervisor
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    gone, alive = psutil.wait_procs(descendants, timeout=5)
    assert alive == []


def test_a_dying_child_stops_the_others_and_the_exit_code_says_so(supervisor):
    process, sleep_pid, descendants = supervisor
    os.kill(sleep_pid, signal.SIGKILL)
    assert process.wait(timeout=20) == 1
    gone, alive = psutil.wait_procs(descendants, timeout=5)
    assert alive == []


def test_first_run_writes_env_and_a_second_run_keeps_it(tmp_path):
    env_file = tmp_path / ".env"
    added = devserver.ensure_env_file(env_file, "http://127.0.0.1:8001")
    assert {"SECRET_KEY", "TDS_WEBHOOK_TOKEN", "TDS_ADMIN_PASSWORD", "ZOHO_ORGANIZATION_ID"} <= set(added)
    assert added["ZOHO_API_BASE"] == added["ZOHO_ACCOUNTS_BASE"] == "http://127.0.0.1:8001"
    first = devserver.read_env_file(env_file)

    assert devserver.ensure_env_file(env_file, "http://127.0.0.1:8001") == {}
    assert devserver.read_env_file(env_file) == first
    assert env_file.stat().st_mode & 0o077 == 0  # secrets: readable by the owner only


def test_a_setting_removed_from_env_is_generated_again_and_the_rest_kept(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=true\nSECRET_KEY=mine\n")
    added = devserver.ensure_env_file(env_file, "http://127.0.0.1:8001")
    assert "SECRET_KEY" not in added
    stored = devserver.read_env_file(env_file)
    assert stored["SECRET_KEY"] == "mine"
    assert stored["DEBUG"] == "true"
    assert stored["TDS_WEBHOOK_TOKEN"] == added["TDS_WEBHOOK_TOKEN"]


# --- A new database: the first full pull completes the ERP ------------------------------------------

FIRST_PULL_SECONDS = 180  # the whole of it: start, pull, drain (drainers start on the watchdog's minute)


@pytest.fixture
def new_postgres_database():
    """A database of its own, as a new install has: created empty, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"tdscore_first_pull_{os.getpid()}"
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    with closing(psycopg.connect(admin, autocommit=True)) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with closing(psycopg.connect(admin, autocommit=True)) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _scalar(database_url: str, sql: str) -> int:
    import psycopg

    with closing(psycopg.connect(database_url)) as connection:
        return connection.execute(sql).fetchone()[0]


@pytest.mark.postgres
def test_make_run_on_a_new_database_completes_the_erp(tmp_path, new_postgres_database):
    # A quiet simulator (one change an hour): what the ERP must hold is the organisation as seeded.
    server = Devserver(tmp_path, database_url=new_postgres_database, args=("--demo-interval", "3600"))
    deadline = time.monotonic() + FIRST_PULL_SECONDS
    seen: list[psutil.Process] = []
    try:
        server.wait_healthy()
        seen.extend(server.descendants())
        while "first full pull finished" not in server.output():
            assert "first full pull ended" not in server.output(), server.output()[-3000:]
            assert time.monotonic() < deadline, f"no first full pull in time:\n{server.output()[-3000:]}"
            time.sleep(1)
        output = server.output()
        for slug in entities.ENTITIES:  # its progress is in make run's output
            assert re.search(rf"^{slug}: (full|stock) run #\d+, about [\d,]+ calls?$", output, re.M), slug
            assert re.search(rf"^{slug}: completed — ", output, re.M), slug
        # The first pull said what it would cost before it began, within 2x of what it took.
        took = re.search(r"^Took ([\d,]+) calls in .* \(estimated ([\d,]+) calls", output, re.M)
        assert took, output[-3000:]
        spent, estimated = (int(n.replace(",", "")) for n in took.groups())
        assert spent / 2 <= estimated <= spent * 2, took[0]
        waiting = "SELECT count(*) FROM tds_sync_queue WHERE status IN ('pending', 'retry', 'processing')"
        while _scalar(new_postgres_database, waiting):
            assert time.monotonic() < deadline, f"the queue did not drain:\n{server.output()[-3000:]}"
            time.sleep(1)

        assert httpx.get(f"{server.url}/health/ready", timeout=10).json()["status"] == "ok"
        assert _scalar(new_postgres_database, "SELECT count(*) FROM tds_alerts WHERE status <> 'resolved'") == 0
        # Zoho and the ERP compared, entity by entity: nothing missing, extra or different.
        compared = subprocess.run(
            [sys.executable, "manage.py", "reconcile"], cwd=BASE_DIR, env=server.env, capture_output=True, text=True
        )
        assert compared.returncode == 0, compared.stdout + compared.stderr
        drift = dict(re.findall(r"^([\w-]+): Zoho \d+, ERP \d+; drift: (.*)$", compared.stdout, re.M))
        assert set(drift) == set(entities.ENTITIES), compared.stdout
        assert {slug: totals for slug, totals in drift.items() if re.search(r"[1-9]", totals)} == {}, compared.stdout
    finally:
        server.cleanup(seen + (server.descendants() if server.process.poll() is None else []))


ONE_SHOT = """
import sys
from tdscore import devserver
stop = devserver.catch_stop_signals()
children = [devserver.start("a one-shot task", ["sh", "-c", "exit 3"], one_shot=True), devserver.start("sleep", ["sleep", "60"])]
sys.exit(devserver.supervise(children, stop))
"""


def test_a_one_shot_child_that_ends_stops_nothing():
    process = subprocess.Popen([sys.executable, "-c", ONE_SHOT], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True)
    try:
        assert (
            process.stdout.readline()
            == "a one-shot task ended with code 3 (its output above says why); the rest keeps running.\n"
        )
        time.sleep(0.5)
        assert process.poll() is None  # the stack runs on
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
