"""Two hosts on one database, one killed mid-drain. The test makes two network namespaces joined to a
bridge, each a "host" with a hostname of its own running the project's gunicorn and qcluster, both
on one private PostgreSQL (and, with the Redis broker, one private Redis) listening on the bridge.
Webhooks carrying newer versions of a few hundred products are spread over both gunicorns; while
host A's drainers hold leased rows, its gunicorn and its whole qcluster are killed with -9, and the
webhooks go on to host B alone. Afterwards every webhook answered 2xx is in the ERP exactly once,
each product holds its newest version, nothing is left processing, and host B's drainers finished
rows host A's had leased: the leases ran out and the other host took the rows."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from erp.models import Product
from sync.config_keys import (
    BATCH_SIZE,
    DRAINERS,
    HEARTBEAT_GRACE_SECONDS,
    HEARTBEAT_PERIOD_SECONDS,
    LOCK_TIMEOUT_SECONDS,
    QUEUE_POLL_INTERVAL_MS,
)
from sync.models import AuditTrail, QueueItem, WorkerHeartbeat
from tests.infra.conftest import ROOT, TOKEN, Server, free_port, gunicorn_argv, server_env
from tests.infra.private_postgres import private_cluster
from tests.queue.test_drain_survives_outage import stop

pytestmark = pytest.mark.postgres

OBJECTS = 300  # products, each sent in ever newer versions
SENDERS = 4  # threads; each owns every SENDERS-th product, so one product's versions leave in order
SEND_PAUSE_SECONDS = 0.02  # at most ~200 webhooks a second in all
WARM_UP_SECONDS = 2  # webhooks to both hosts before the kill is looked for
KILL_WITHIN_SECONDS = 25  # to catch host A's drainers holding rows while a drainer runs on host B
AFTER_KILL_SECONDS = 4  # webhooks to host B alone, past the lease: the take-over happens under fire
# Usually seconds. But a drain task's successor may already be on its way to host A when it dies
# (with Redis, a blocked pop delivers it into the dead host's socket): that drainer's chain ends,
# and host B's watchdog (a schedule of every minute, checked every 30 s) starts a new one once
# the heartbeat is past period plus grace (GRACE_SECONDS here).
DRAINED_WITHIN_SECONDS = 100
GRACE_SECONDS = 2
LEASE_SECONDS = 2
HEARTBEAT_SECONDS = 1
WEB_PORT = 8000  # each host has the port to itself, as a machine does
BASE_VERSION = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # version n is this plus n seconds
# The processes' durations, stored in the database as an operator stores them: a lease held by a
# killed host runs out in ~2 s. Two drainers for both hosts: `drainers` counts across the cluster set.
CONFIGURE = f"""
from django.core.management import call_command
from tdscore import config
call_command("migrate", verbosity=0)
config.update_many({{
    "{LOCK_TIMEOUT_SECONDS.name}": {LEASE_SECONDS}, "{HEARTBEAT_PERIOD_SECONDS.name}": {HEARTBEAT_SECONDS},
    "{QUEUE_POLL_INTERVAL_MS.name}": 100, "{DRAINERS.name}": 2, "{BATCH_SIZE.name}": 20,
    "{HEARTBEAT_GRACE_SECONDS.name}": {GRACE_SECONDS},
}})
"""
# What both hosts' processes read from the environment besides the database. A drain task hands
# over to its successor through the broker every 2 s (60 s by default), so drainers move between
# the hosts' clusters as a deployment's do over minutes; the third worker is the one runs may take.
HOST_ENV = {"TDS_Q_WORKERS": "3", "TDS_DRAIN_DEADLINE_SECONDS": "2"}

QUEUE, BEATS = QueueItem._meta.db_table, WorkerHeartbeat._meta.db_table
AUDIT, PRODUCTS = AuditTrail._meta.db_table, Product._meta.db_table
FINISHED = [str(status) for status in QueueItem.FINISHED]
UNFINISHED_ROWS = f"SELECT count(*) FROM {QUEUE} WHERE NOT status = ANY(%s)"


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"ip {' '.join(args)} failed: {done.stderr.strip()}"


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    link: str  # the root side of its veth pair

    @property
    def hostname(self) -> str:
        return f"tds-host-{self.name}"

    def argv(self, *command: str) -> list[str]:
        """`command` inside the host's namespace under the host's own hostname, which drainers record
        with their heartbeats: on one hostname each host would take the other's drainers for its own."""
        rename = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "sh", "-c", rename, self.hostname, *command]


class Network:
    """A bridge in the root namespace (the database's side) and one network namespace per host joined
    to it by a veth pair, all named after the test's pid and the network's number in it, so neither
    parallel runs nor the next network of the same run (while the kernel still tears the last one
    down) share a name or a subnet."""

    made = itertools.count()

    def __init__(self, *names: str):
        number = next(self.made)
        tag = f"{os.getpid()}{number}"
        prefix = f"10.201.{(os.getpid() * 4 + number) % 250}"
        self.bridge, self.address, self.clients = f"tdsbr{tag}", f"{prefix}.1", f"{prefix}.0/24"
        self.hosts = {
            name: Host(name, f"tds-{name}-{tag}", f"{prefix}.{n + 2}", f"tds{name}{tag}")
            for n, name in enumerate(names)
        }

    def __enter__(self) -> Network:
        if not shutil.which("ip") or not shutil.which("unshare"):
            pytest.skip("ip (iproute2) or unshare (util-linux) is not installed: no network namespaces")
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.address}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for host in self.hosts.values():
                ip("netns", "add", host.namespace)
                ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
                ip("link", "set", host.link, "master", self.bridge, "up")
                ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
                ip("-n", host.namespace, "link", "set", "eth0", "up")
                ip("-n", host.namespace, "link", "set", "lo", "up")
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def remove(self) -> None:
        # The pair's root side first: a namespace's deletion takes its end with it, but only once the
        # kernel gets to it.
        for host in self.hosts.values():
            subprocess.run(["ip", "link", "del", host.link], capture_output=True, timeout=30)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)


@contextlib.contextmanager
def private_redis(address: str) -> Iterator[str]:
    """A redis-server of the test's own on `address` and a free port (never the shared one): its URL.
    Off the loopback Redis wants a password (protected mode), as a deployment's shared Redis has."""
    program = shutil.which("redis-server")
    if not program:
        pytest.skip("redis-server is not installed: no Redis broker for the hosts")
    port, password = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [
            program,
            "--bind",
            address,
            "--port",
            str(port),
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
                break
            assert server.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        yield f"redis://:{password}@{address}:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def version_stamp(n: int) -> datetime:
    return BASE_VERSION + timedelta(seconds=n)


def version_number(stamp: datetime) -> int:
    return round((stamp - BASE_VERSION).total_seconds())


class Senders:
    """Threads posting product webhooks, each a newer version of one of the thread's own products,
    to the hosts' gunicorns in turn; after `only(host)` to that host alone. Every answer is kept."""

    def __init__(self, urls: dict[str, str]):
        self.urls = urls
        self.targets = list(urls)
        self.turned = 0  # answers before `only`
        self.answers: list[tuple[str, int, str, int | str]] = []  # (product, version, host, status or error)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(SENDERS)]

    def __enter__(self) -> Senders:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def only(self, host: str) -> None:
        with self.lock:
            self.turned = len(self.answers)
        self.targets = [host]

    def _send(self, sender: int) -> None:
        clients = {
            host: httpx.Client(base_url=url, timeout=5, headers={"X-TDS-Token": TOKEN})
            for host, url in self.urls.items()
        }
        objects = [f"p{n}" for n in range(sender, OBJECTS, SENDERS)]
        versions = Counter()
        turn = 0
        while not self.stopping.is_set():
            object_id, targets = objects[turn % len(objects)], self.targets
            host = targets[turn % len(targets)]
            versions[object_id] += 1
            v = versions[object_id]
            body = {
                "item_id": object_id,
                "name": f"product {object_id} v{v}",
                "last_modified_time": version_stamp(v).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            try:
                answer: int | str = clients[host].post("/webhooks/products", json=body).status_code
            except httpx.TransportError as exc:
                answer = type(exc).__name__
            with self.lock:
                self.answers.append((object_id, v, host, answer))
            turn += 1
            self.stopping.wait(SEND_PAUSE_SECONDS)
        for client in clients.values():
            client.close()

    def tally(self) -> Counter:
        with self.lock:
            return Counter(answer for *_, answer in self.answers)

    def acknowledged(self, *, since_only: bool = False) -> set[tuple[str, int]]:
        with self.lock:
            answers = self.answers[self.turned :] if since_only else self.answers
            return {(object_id, v) for object_id, v, _, answer in answers if isinstance(answer, int) and answer < 300}


class HostProcesses:
    """A host's gunicorn and qcluster, each the leader of its own process group, logging to files."""

    def __init__(self, host: Host, env: dict[str, str], logs: Path):
        self.host = host
        self.web = Server(
            host.argv(*gunicorn_argv()),
            {**env, "TDS_BIND": f"{host.address}:{WEB_PORT}"},
            logs / f"gunicorn-{host.name}.log",
            WEB_PORT,
            address=host.address,
        )
        self.cluster_log = logs / f"qcluster-{host.name}.log"
        with self.cluster_log.open("w") as out:
            self.cluster = subprocess.Popen(
                host.argv(sys.executable, "manage.py", "qcluster"),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def owns(self, pid: int) -> bool:
        """Whether `pid` is one of this host's qcluster processes (its workers are in its group)."""
        try:
            return os.getpgid(pid) == self.cluster.pid
        except ProcessLookupError:
            return False

    def holding(self, db: psycopg.Connection) -> list[int]:
        """Ids of the rows leased now by drainers whose last beat came from this host's qcluster."""
        rows = db.execute(
            f"SELECT q.id, h.pid FROM {QUEUE} q JOIN {BEATS} h ON h.worker_id = q.locked_by WHERE q.status = %s",
            [str(QueueItem.Status.PROCESSING)],
        ).fetchall()
        return [pk for pk, pid in rows if self.owns(pid)]

    def beats(self, db: psycopg.Connection, *, since_seconds: float = 0, after: datetime | None = None) -> bool:
        """Whether a drainer beat from this host's qcluster within `since_seconds`, or `after` a moment."""
        after = after or db.execute("SELECT now() - make_interval(secs => %s)", [since_seconds]).fetchone()[0]
        pids = db.execute(f"SELECT pid FROM {BEATS} WHERE last_seen_at > %s", [after]).fetchall()
        return any(self.owns(pid) for (pid,) in pids)

    def kill(self) -> None:
        for leader in (self.web.process, self.cluster):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(leader.pid, signal.SIGKILL)
            leader.wait(timeout=30)

    def stop(self) -> None:
        self.web.stop()
        stop(self.cluster)

    def logs(self) -> str:
        tail = self.cluster_log.read_text(errors="replace")[-1500:]
        return (
            f"gunicorn {self.host.name} (tail):\n{self.web.output()[-1000:]}\nqcluster {self.host.name} (tail):\n{tail}"
        )


def freeze_holding(db: psycopg.Connection, a: HostProcesses, b: HostProcesses, within: float) -> list[int]:
    """Stop host A's qcluster (SIGSTOP) at a moment its drainers hold rows and a drainer runs on host B,
    and return the ids of those rows; [] if no such moment came `within` seconds (A left running).

    A batch lasts milliseconds: seen from here, it may have committed before a kill lands. Frozen,
    A can neither finish its batch nor take a drain task from the broker, so the rows it still holds
    after a heartbeat period are the ones its death will strand, and the drainer that beat from B
    meanwhile is one that outlives A (not a hand-over A's cluster had already taken)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if a.holding(db) and b.beats(db, since_seconds=HEARTBEAT_SECONDS):
            os.killpg(a.cluster.pid, signal.SIGSTOP)
            frozen = db.execute("SELECT now()").fetchone()[0]
            time.sleep(HEARTBEAT_SECONDS + 0.3)
            held = a.holding(db)
            if held and b.beats(db, after=frozen):
                return held
            os.killpg(a.cluster.pid, signal.SIGCONT)
        time.sleep(0.005)
    return []


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def outcome(db: psycopg.Connection, senders: Senders, held_by_a: list[int], b: Host) -> dict:
    """What became of every webhook, counted from the database."""
    rows = db.execute(
        f"SELECT q.id, q.object_id, q.version, q.status, q.lease_expiries, h.hostname FROM {QUEUE} q "
        f"LEFT JOIN {BEATS} h ON h.worker_id = q.locked_by"
    ).fetchall()
    audits = Counter(
        {
            (object_id, version_number(version)): n
            for object_id, version, n in db.execute(
                f"SELECT object_id, version, count(*) FROM {AUDIT} GROUP BY object_id, version"
            ).fetchall()
        }
    )
    in_erp = {
        object_id: int(name.rsplit(" v", 1)[1])
        for object_id, name in db.execute(f"SELECT zoho_id, name FROM {PRODUCTS}")
    }
    stored = {(object_id, version_number(version)) for _, object_id, version, *_ in rows}
    newest: dict[str, int] = {}
    for object_id, v in stored:
        newest[object_id] = max(v, newest.get(object_id, 0))
    completed = [
        (object_id, version_number(version))
        for _, object_id, version, status, *_ in rows
        if status == QueueItem.Status.COMPLETED
    ]
    acknowledged = senders.acknowledged()
    held = set(held_by_a)
    tally = senders.tally()
    return {
        "sent": sum(tally.values()),
        "2xx": sum(n for answer, n in tally.items() if isinstance(answer, int) and answer < 300),
        "2xx after the kill": len(senders.acknowledged(since_only=True)),
        "5xx": sum(n for answer, n in tally.items() if isinstance(answer, int) and answer >= 500),
        "other": {answer: n for answer, n in tally.items() if not isinstance(answer, int) or 300 <= answer < 500},
        "stored": len(rows),
        "completed": len(completed),
        "applied": sum(audits.values()),
        "completed not applied once": sum(1 for pair in completed if audits[pair] != 1),
        "duplicated": sum(n - 1 for n in audits.values() if n > 1),
        "processing": sum(1 for row in rows if row[3] == QueueItem.Status.PROCESSING),
        "unfinished": sum(1 for row in rows if row[3] not in FINISHED),
        # A change lost: a 2xx never stored, or a product behind the newest version stored for it.
        "lost": len(acknowledged - stored) + sum(1 for object_id, v in newest.items() if in_erp.get(object_id, 0) < v),
        "held by A at the kill": len(held),
        "leases expired": sum(1 for row in rows if row[4] > 0),
        "taken over by B": sum(
            1
            for pk, _, _, status, expiries, hostname in rows
            if pk in held and status in FINISHED and expiries > 0 and hostname == b.hostname
        ),
    }


@pytest.fixture
def network():
    with Network("a", "b") as net:
        yield net


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_two_hosts_on_one_database_one_killed_mid_drain_lose_and_double_nothing(broker, network, tmp_path):
    a, b = network.hosts["a"], network.hosts["b"]
    with contextlib.ExitStack() as resources:
        pg = resources.enter_context(private_cluster(address=network.address, clients=network.clients))
        broker_env = {"Q_BROKER": broker, "REDIS_URL": ""}
        if broker == "redis":
            broker_env["REDIS_URL"] = resources.enter_context(private_redis(network.address))
        # The hosts' own addresses are the names webhooks reach them by (nginx's upstreams, here the test).
        allowed = ",".join(host.address for host in (a, b))
        env = server_env(pg.url, ALLOWED_HOSTS=allowed, **HOST_ENV, **broker_env)
        configured = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", CONFIGURE], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert configured.returncode == 0, configured.stderr  # migrations run once, for both hosts
        db = resources.enter_context(psycopg.connect(pg.url, autocommit=True))
        hosts = {}
        for host in (a, b):
            hosts[host.name] = HostProcesses(host, env, tmp_path)
            resources.callback(hosts[host.name].stop)
        for processes in hosts.values():
            processes.web.wait_answering()
        beating = wait_until(lambda: db.execute(f"SELECT count(*) FROM {BEATS}").fetchone()[0] > 0, 60)
        assert beating, "no drainer started:\n" + "\n".join(p.logs() for p in hosts.values())
        story = []
        with Senders({name: p.web.url for name, p in hosts.items()}) as senders:
            time.sleep(WARM_UP_SECONDS)
            began = time.monotonic()
            held_by_a = freeze_holding(db, hosts["a"], hosts["b"], KILL_WITHIN_SECONDS)
            hosts["a"].kill()
            senders.only(b.name)
            killed = time.monotonic()
            story.append(
                f"host A killed after {killed - began:.2f} s of looking, its drainers holding {len(held_by_a)} rows"
            )
            time.sleep(AFTER_KILL_SECONDS)
        last_sent = time.monotonic()
        drained = wait_until(lambda: db.execute(UNFINISHED_ROWS, [FINISHED]).fetchone()[0] == 0, DRAINED_WITHIN_SECONDS)
        story.append(
            f"queue {'drained' if drained else 'NOT drained'} {time.monotonic() - last_sent:.2f} s after the last webhook"
        )
        counts = outcome(db, senders, held_by_a, b)
        logs = "\n".join(p.logs() for p in hosts.values())
    message = f"{broker} broker: {'; '.join(story)}\ncounts: {counts}\n{logs}"
    print(f"{broker} broker: {'; '.join(story)}\ncounts: {counts}")
    assert counts["5xx"] == 0 and counts["2xx after the kill"] > 0, message
    assert counts["completed not applied once"] == counts["duplicated"] == 0, message
    assert counts["applied"] == counts["completed"], message  # an audit row per completed row, no more
    assert counts["processing"] == counts["unfinished"] == 0, message
    assert counts["lost"] == 0, message
    assert counts["taken over by B"] > 0, message
