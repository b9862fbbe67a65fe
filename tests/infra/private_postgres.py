"""A PostgreSQL cluster of one's own, for the faults that stop the database server itself (the
stopped-database test, the soak bench) or that reach it from other network namespaces (the
two-host test): never the shared server other tests run on."""

from __future__ import annotations

import contextlib
import glob
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.infra.conftest import free_port


def installed_initdb() -> str | None:
    """The newest installed PostgreSQL's initdb, or None without the server programs."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else None


class PrivatePostgres:
    """initdb in a temporary directory owned by `postgres`, listening on `address` (127.0.0.1 unless
    told) at a free port with its socket in that directory, holding a `tdscore` database once
    `create()` has run. `clients`, a network such as 10.201.0.0/24, is also trusted: processes in
    network namespaces reach it through a bridge."""

    def __init__(self, initdb: str, *, address: str = "127.0.0.1", clients: str | None = None):
        self.bin = Path(initdb).parent
        self.dir = Path(tempfile.mkdtemp(prefix="tds-private-pg-"))
        shutil.chown(self.dir, "postgres")
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.address, self.port = address, free_port()
        self.url = f"postgres://postgres@{address}:{self.port}/tdscore"
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        if clients:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {clients} trust\n")

    def _as_postgres(self, *argv: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}"

    def create(self) -> None:
        """Start the server and create the `tdscore` database."""
        self.start()
        with psycopg.connect(self.url.replace("/tdscore", "/postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE tdscore")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={self.address}"
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, sql: str, params=()) -> list[tuple]:
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


@contextlib.contextmanager
def private_cluster(*, address: str = "127.0.0.1", clients: str | None = None) -> Iterator[PrivatePostgres]:
    """For a test: a started private cluster with an empty `tdscore` database; removed afterwards."""
    initdb = installed_initdb()
    if not initdb:
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed: no private cluster")
    cluster = PrivatePostgres(initdb, address=address, clients=clients)
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.remove()
