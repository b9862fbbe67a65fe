"""Servers started as processes on 127.0.0.1, as an operator starts them, and their real logs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "infra-test-token-5fd0c1"
START_TIMEOUT_SECONDS = 60  # a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port_database_url() -> str:
    """A PostgreSQL URL nothing listens on: the database is down."""
    return f"postgres://postgres@127.0.0.1:{free_port()}/tdscore"


def shared_database_url(**options: str) -> str:
    """The test database this run created, for a server process to share (transactional tests only)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{connection.settings_dict['NAME']}"
    query = "&".join(f"{name}={value}" for name, value in options.items())
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}@{host}:{port}/{connection.settings_dict['NAME']}" + (f"?{query}" if query else "")


class DatabaseLink:
    """A TCP forwarder between servers and PostgreSQL that the test can cut: `down()` drops every
    session and refuses new ones, as a crashed or restarting database server does; `up()` heals it."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.is_up = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if not self.is_up:
                    client.close()  # refused: the server is down
                    continue
                upstream = socket.create_connection(self.target)
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        with self.lock:
            self.is_up = False
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def up(self) -> None:
        with self.lock:
            self.is_up = True

    def close(self) -> None:
        self.down()
        self.listener.close()


@pytest.fixture
def database_link():
    """The shared test database behind a DatabaseLink: (link, DATABASE_URL through it)."""
    db = settings.DATABASES["default"]
    link = DatabaseLink((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    yield link, f"postgres://{db['USER']}@127.0.0.1:{link.port}/{connection.settings_dict['NAME']}"
    link.close()


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "TDS_ENV_FILE": os.devnull, "DATABASE_URL": database_url, "TDS_WEBHOOK_TOKEN": TOKEN}
    env.update({"SECRET_KEY": "infra-test-secret-key-" + "x" * 40, "DEBUG": "False", **extra})
    return env


class Server:
    """A web server process; its stdout and stderr go to one log file the test reads."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, port: int, address: str = "127.0.0.1"):
        self.port, self.log = port, log
        self.url = f"http://{address}:{port}"
        with log.open("w") as out:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_answering(self, path: str = "/health") -> None:
        """Until the server answers `path` at all (503 included: the database may be down on purpose)."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited early:\n{self.output()}"
            try:
                httpx.get(self.url + path, timeout=5)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        pytest.fail(f"no answer on {path} within {START_TIMEOUT_SECONDS} s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def runserver_argv(port: int) -> list[str]:
    return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]


def gunicorn_argv(*extra: str) -> list[str]:
    """gunicorn as the systemd unit starts it: the configuration is the root's gunicorn.conf.py."""
    return [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), *extra, "tdscore.wsgi:application"]


def _starter(directory: Path):
    started: list[Server] = []

    def start(kind: str, env: dict[str, str], *gunicorn_args: str) -> Server:
        port = free_port()
        log = directory / f"{kind}-{len(started)}.log"
        if kind == "runserver":
            server = Server(runserver_argv(port), env, log, port)
        else:
            server = Server(gunicorn_argv(*gunicorn_args), {**env, "TDS_BIND": f"127.0.0.1:{port}"}, log, port)
        started.append(server)
        server.wait_answering()
        return server

    return start, started


@pytest.fixture
def start_server(tmp_path):
    """start_server(kind, env, *gunicorn_args) -> a Server answering; stopped afterwards.
    kind: "runserver" (manage.py runserver) or "gunicorn" (with the root's gunicorn.conf.py)."""
    start, started = _starter(tmp_path)
    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def start_module_server(tmp_path_factory):
    """start_server for servers that several tests of a module share."""
    start, started = _starter(tmp_path_factory.mktemp("servers"))
    yield start
    for server in started:
        server.stop()
