"""Soak benchmark: an hour of webhooks through real processes while faults come and go.

    .venv/bin/python bench/soak.py                 # an hour at 50 webhooks/s, a fault every 5 minutes
    .venv/bin/python bench/soak.py --smoke         # 14 s of webhooks, each fault once; tests/reliability/test_soak_smoke.py
    .venv/bin/python bench/soak.py --duration 600 --rate 20 --json

Everything runs on a PostgreSQL cluster the bench makes itself (initdb as `postgres` in a temporary
directory, its own port; never the shared server, since one fault stops it): a gunicorn of the
project on 127.0.0.1 takes product webhooks at a steady rate, a qcluster with two drainers applies
them, and the Zoho simulator, in a process of its own, answers the pulls the cluster's schedules and
the bench start. The webhooks carry ever newer versions of a few thousand objects, so newer versions
keep overriding older ones. Every `--fault-every` seconds comes the next fault of a rotation: one
drainer killed with -9 (the cluster must replace it), PostgreSQL stopped for a few seconds and
started again (webhooks meanwhile answer 503, never 500), a burst of Zoho 5xx under a pull.

Reported: sent, answered 2xx / 503 / other 5xx, stored, applied, lost (answered 2xx but the object's
stored version older than the webhook's at the end), applied twice (audit rows per (object, version)
above one), webhook → ERP latency (inbox received_at → queue finished_at), the faults that happened,
and each process's RSS sampled every `--rss-every` seconds with its growth after warm-up (the end
against the first sample after 10% of the run), flagged beyond +20% or +30 MB. Exit status 1 when a
webhook answered 2xx was lost, a change was applied twice or a webhook got a 5xx other than 503;
with --smoke also when a fault did not happen. Ctrl-C stops it all and removes the cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from tests.infra.conftest import TOKEN, Server, free_port, gunicorn_argv, server_env  # noqa: E402
from tests.infra.private_postgres import PrivatePostgres, installed_initdb  # noqa: E402

ENTITY = "products"
PULLED = "customers"  # what the bench's pulls read from the simulator: other objects than the webhooks'
LANES = 8  # sender threads, each on its share of one timetable
DRAINERS = 2
RSS_GROWTH_PCT, RSS_GROWTH_MB = 20.0, 30.0  # growth after warm-up beyond either is flagged
WARM_UP = 0.1  # of the run: the RSS baseline is the first sample after it


@dataclass(frozen=True)
class Plan:
    duration: float
    rate: float
    fault_every: float
    objects: int
    rss_every: float
    outage: float  # seconds PostgreSQL stays stopped
    settle: float  # seconds allowed after the last webhook for the queue to drain
    burst: int  # Zoho 5xx answers in a row
    customers: int  # simulator records the pulls read
    smoke: bool


def plan_from(args: argparse.Namespace) -> Plan:
    if args.smoke:
        return Plan(
            duration=14,
            rate=15,
            fault_every=4,
            objects=300,
            rss_every=3,
            outage=3,
            settle=30,
            burst=2,
            customers=400,
            smoke=True,
        )
    return Plan(
        duration=args.duration,
        rate=args.rate,
        fault_every=args.fault_every,
        objects=args.objects,
        rss_every=args.rss_every,
        outage=8,
        # A drain task hands over across an 8 s outage, but one whose chain broke anyway (an outage
        # past its hand-over) waits for the watchdog (RELIABILITY.md), up to three minutes: the
        # tail gets five, so such a case is measured, not counted lost.
        settle=300,
        burst=4,
        customers=2000,
        smoke=False,
    )


# --- the simulator, in a process of its own (its RSS is measured like the others) ----------------
def _simulator(port: int, customers: int, commands) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the bench, which stops this process
    from zohosim import ZohoSimulator

    with ZohoSimulator(port=port) as sim:
        sim.seed(PULLED, customers)
        commands.send("ready")
        calls_before = 0
        while (command := commands.recv()) != "stop":
            if command[0] == "burst":  # the next `count` API calls answer `status`
                calls_before = len(sim.api_calls())
                sim.fail_next(command[1], count=command[2])
                commands.send(None)
            else:  # "served": API calls answered since the burst began (the burst's come first)
                commands.send(len(sim.api_calls()) - calls_before)


class Simulator:
    def __init__(self, customers: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.commands, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=_simulator, args=(self.port, customers, theirs), daemon=True
        )
        self.process.start()
        assert self.commands.poll(60) and self.commands.recv() == "ready", "the simulator did not start"

    def ask(self, *command):
        self.commands.send(command)
        return self.commands.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.commands.send("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


# --- the webhooks --------------------------------------------------------------------------------
class Senders:
    """Threads posting webhooks on a fixed timetable (a slow answer does not lower the rate); the
    n-th carries version T0 + n seconds of object n mod `objects`, so each object's versions rise."""

    def __init__(self, url: str, plan: Plan, t0):
        self.url, self.plan, self.t0 = url, plan, t0
        self.answers: list[tuple[int, int | str]] = []  # (n, status or transport error); append is atomic
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._lane, args=(k,), daemon=True) for k in range(LANES)]
        self.began = 0.0

    def start(self) -> None:
        self.began = time.monotonic() + 0.2
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def object_id(self, n: int) -> str:
        return f"soak-{n % self.plan.objects}"

    def version(self, n: int):
        return self.t0 + timedelta(seconds=n)

    def _lane(self, k: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10, headers={"X-TDS-Token": TOKEN}) as client:
            n = k
            while not self.stopping.wait(max(0.0, self.began + n / self.plan.rate - time.monotonic())):
                body = {
                    "item_id": self.object_id(n),
                    "name": f"soak product {n % self.plan.objects} v{n}",
                    "rate": f"{n % 1000}.50",
                    "last_modified_time": self.version(n).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                }
                try:
                    answer: int | str = client.post(f"/webhooks/{ENTITY}", json=body).status_code
                except httpx.TransportError as exc:
                    answer = type(exc).__name__
                self.answers.append((n, answer))
                n += LANES


# --- the processes -------------------------------------------------------------------------------
class Cluster:
    """`manage.py qcluster` in a session of its own: its workers are its children, stopped as a group."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def pids(self) -> set[int]:
        with contextlib.suppress(psutil.NoSuchProcess):
            leader = psutil.Process(self.process.pid)
            return {leader.pid, *(child.pid for child in leader.children(recursive=True))}
        return set()

    def stop(self) -> None:
        # As a terminal's Ctrl-C stops it (README): SIGINT to the group, then -9 if it lingers.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def processes(server: Server, cluster: Cluster, sim: Simulator) -> dict[str, int]:
    """label → pid of every process the run is made of, as they are now."""
    found = {f"simulator {sim.process.pid}": sim.process.pid}
    with contextlib.suppress(psutil.NoSuchProcess):
        master = psutil.Process(server.process.pid)
        found[f"gunicorn master {master.pid}"] = master.pid
        found.update({f"gunicorn worker {p.pid}": p.pid for p in master.children(recursive=True)})
    leader = cluster.process.pid
    found.update({f"qcluster {'leader' if pid == leader else 'process'} {pid}": pid for pid in cluster.pids()})
    return found


def rss_mb(pid: int) -> float | None:
    with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
        return psutil.Process(pid).memory_info().rss / 2**20
    return None


# --- the faults ----------------------------------------------------------------------------------
@dataclass
class Faults:
    tally: Counter = field(default_factory=Counter)
    story: list[str] = field(default_factory=list)
    pull_runs: list[int] = field(default_factory=list)

    def say(self, at: float, line: str) -> None:
        self.story.append(f"{at:7.1f} s  {line}")
        print(self.story[-1], flush=True)


def fresh_drainers(cluster: Cluster) -> dict[str, int]:
    """worker id → pid of the drainers the watchdog counts as alive (worker.fresh_heartbeats) whose
    process is one of the cluster's now."""
    from django.db import close_old_connections
    from django.utils import timezone

    from sync import worker

    close_old_connections()
    beats = worker.fresh_heartbeats(timezone.now()).values_list("worker_id", "pid")
    return {worker_id: pid for worker_id, pid in beats if pid in cluster.pids()}


def kill_a_drainer(cluster: Cluster, faults: Faults, at: float) -> None:
    waited = time.monotonic()
    while not (drainers := fresh_drainers(cluster)) and time.monotonic() - waited < 15:
        time.sleep(0.5)  # a cluster just started, or just replacing one, beats within seconds
    if not drainers:
        faults.say(at, "kill -9: no drainer beating, nothing killed")
        return
    victim = sorted(drainers.values())[0]
    os.kill(victim, signal.SIGKILL)
    faults.tally["drainer killed"] += 1
    killed = time.monotonic()
    while time.monotonic() - killed < 30:
        alive = {pid for pid in fresh_drainers(cluster).values() if pid != victim}
        if len(alive) >= DRAINERS:
            faults.tally["drainer replaced"] += 1
            faults.say(
                at,
                f"kill -9 drainer pid {victim}: {DRAINERS} drainers beat again after {time.monotonic() - killed:.1f} s",
            )
            return
        time.sleep(0.5)
    faults.say(at, f"kill -9 drainer pid {victim}: not replaced within 30 s")


def restart_postgres(pg: PrivatePostgres, plan: Plan, faults: Faults, at: float) -> None:
    from django.db import connections

    connections.close_all()
    pg.stop("fast")
    time.sleep(plan.outage)
    pg.start()
    faults.tally["postgres restarted"] += 1
    faults.say(at, f"PostgreSQL stopped for {plan.outage:.0f} s and started again")


def zoho_burst(sim: Simulator, plan: Plan, faults: Faults, at: float) -> None:
    """A full pull of PULLED started as an operator starts one, its first calls answered 5xx."""
    from django.db import close_old_connections, transaction
    from django.utils import timezone

    from sync import pull, tasks

    close_old_connections()
    sim.ask("burst", 503, plan.burst)
    with transaction.atomic():
        started, refused = pull.start_runs([PULLED], "full", now=timezone.now(), trigger="manual")
        tasks.launch_runs(started)
    faults.pull_runs += [run.pk for run in started]
    deadline = time.monotonic() + 20
    while (served := sim.ask("served")) < 1 and time.monotonic() < deadline:
        time.sleep(0.3)
    if served:
        faults.tally["zoho 5xx burst"] += 1
    faults.say(
        at,
        f"Zoho 5xx burst of {plan.burst} under a full pull ({refused or 'started'}): {min(served, plan.burst)} served",
    )


# --- the figures ---------------------------------------------------------------------------------
def percentile(values: list[float], p: int) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100)[p - 1]


def wait_drained(seconds: float) -> float:
    from django.db import Error, close_old_connections

    from sync.models import QueueItem

    began = time.monotonic()
    while time.monotonic() - began < seconds:
        close_old_connections()
        with contextlib.suppress(Error):  # the database may still be coming back
            if not QueueItem.objects.exclude(status__in=QueueItem.FINISHED).exists():
                break
        time.sleep(0.5)
    return time.monotonic() - began


def figures(senders: Senders, faults: Faults) -> dict:
    from django.db import close_old_connections
    from django.db.models import Count

    from erp.models import Product
    from sync.models import AuditTrail, DeadLetter, InboxEvent, QueueItem, SyncRun

    close_old_connections()
    answers = list(senders.answers)
    codes = Counter(code for _, code in answers)
    stored_versions = dict(
        Product.objects.filter(zoho_id__startswith="soak-").values_list("zoho_id", "zoho_last_modified")
    )
    lost = 0
    for n, code in answers:
        if isinstance(code, int) and code < 300:
            stored = stored_versions.get(senders.object_id(n))
            lost += stored is None or stored < senders.version(n)
    twice = AuditTrail.objects.values("entity", "object_id", "version").annotate(n=Count("id")).filter(n__gt=1)
    rows = QueueItem.objects.filter(entity=ENTITY, status=QueueItem.Status.COMPLETED, inbox_event__isnull=False)
    ms = sorted(
        (finished - received).total_seconds() * 1000
        for finished, received in rows.values_list("finished_at", "inbox_event__received_at")
    )
    runs = Counter(SyncRun.objects.filter(pk__in=faults.pull_runs).values_list("status", flat=True))
    return {
        "sent": len(answers),
        "answered_2xx": sum(n for code, n in codes.items() if isinstance(code, int) and code < 300),
        "answered_503": codes[503],
        "answered_other_5xx": sum(
            n for code, n in codes.items() if isinstance(code, int) and code >= 500 and code != 503
        ),
        "answered_4xx": sum(n for code, n in codes.items() if isinstance(code, int) and 400 <= code < 500),
        "transport_errors": sum(n for code, n in codes.items() if not isinstance(code, int)),
        "stored": InboxEvent.objects.filter(entity=ENTITY).count(),
        "applied": AuditTrail.objects.filter(entity=ENTITY).count(),
        "lost": lost,
        "double_applies": sum(row["n"] - 1 for row in twice),
        "unfinished": QueueItem.objects.exclude(status__in=QueueItem.FINISHED).count(),
        "dead_letters": DeadLetter.objects.count(),
        "latency_ms": {f"p{p}": percentile(ms, p) for p in (50, 95, 99)},
        "faults": dict(faults.tally),
        "pull_runs": dict(runs),
    }


def rss_growth(samples: dict[str, list[tuple[float, float]]], alive_at_end: set[str], duration: float) -> dict:
    """Per process alive from warm-up to the end: its RSS then and at the end, and whether it grew too much."""
    growth = {}
    for label in alive_at_end:
        after = [(t, mb) for t, mb in samples[label] if t >= duration * WARM_UP]
        if len(after) < 2:
            continue  # started late (a drainer's replacement): no span to judge
        (_, base), (_, end) = after[0], after[-1]
        grew = end - base
        growth[label] = {
            "warm_mb": round(base, 1),
            "end_mb": round(end, 1),
            "peak_mb": round(max(mb for _, mb in samples[label]), 1),
            "growth_mb": round(grew, 1),
            "growth_pct": round(100 * grew / base, 1),
            "flagged": grew > RSS_GROWTH_MB or 100 * grew / base > RSS_GROWTH_PCT,
        }
    return growth


def table(result: dict, plan: Plan) -> str:
    lat = {k: f"{v:.0f} ms" if v is not None else "-" for k, v in result["latency_ms"].items()}
    lines = [
        f"| figure ({plan.duration:.0f} s at {plan.rate:g} webhooks/s, a fault every {plan.fault_every:g} s) | value |",
        "|---|---|",
        f"| sent | {result['sent']} |",
        f"| answered 2xx / 503 / other 5xx | {result['answered_2xx']} / {result['answered_503']} / {result['answered_other_5xx']} |",
        f"| stored (inbox) / applied (audit rows) | {result['stored']} / {result['applied']} |",
        f"| lost (2xx, not in the ERP) | {result['lost']} |",
        f"| applied twice | {result['double_applies']} |",
        f"| webhook → ERP p50 / p95 / p99 | {lat['p50']} / {lat['p95']} / {lat['p99']} |",
        f"| faults | {', '.join(f'{name} {n}' for name, n in sorted(result['faults'].items())) or 'none'} |",
    ]
    for label, g in sorted(result["rss"].items()):
        flag = " **grew**" if g["flagged"] else ""
        lines.append(
            f"| RSS {label} (warm → end, peak) | {g['warm_mb']} → {g['end_mb']} MB ({g['growth_mb']:+} MB, "
            f"{g['growth_pct']:+}%), peak {g['peak_mb']} MB{flag} |"
        )
    return "\n".join(lines)


def failures(result: dict, plan: Plan) -> list[str]:
    found = [
        f"{name} {result[key]}"
        for name, key in [
            ("lost", "lost"),
            ("applied twice", "double_applies"),
            ("5xx other than 503", "answered_other_5xx"),
        ]
        if result[key]
    ]
    if plan.smoke:
        wanted = ["drainer killed", "drainer replaced", "postgres restarted", "zoho 5xx burst"]
        found += [f"no {fault}" for fault in wanted if not result["faults"].get(fault)]
    return found


# --- the run -------------------------------------------------------------------------------------
def configure(plan: Plan) -> None:
    from django.core.management import call_command
    from django.utils import timezone

    from sync import schedules
    from sync.config_keys import DRAINERS as DRAINERS_KEY
    from sync.config_keys import (
        HEARTBEAT_GRACE_SECONDS,
        HEARTBEAT_PERIOD_SECONDS,
        LOCK_TIMEOUT_SECONDS,
        QUEUE_POLL_INTERVAL_MS,
    )
    from tdscore import config

    call_command("migrate", verbosity=0)
    schedules.install(timezone.now())
    short = {
        LOCK_TIMEOUT_SECONDS: 3,
        HEARTBEAT_PERIOD_SECONDS: 1,
        HEARTBEAT_GRACE_SECONDS: 2,
        QUEUE_POLL_INTERVAL_MS: 100,
    }
    # The hour runs on the shipped durations; the smoke shortens the lease and heartbeats so that a
    # killed drainer's batch moves within its seconds.
    config.update_many({DRAINERS_KEY: DRAINERS, **(short if plan.smoke else {})})


def run(plan: Plan, pg: PrivatePostgres, workdir: Path) -> dict:
    from django.db import connections
    from django.utils import timezone

    sim = Simulator(plan.customers)
    zoho = {
        "ZOHO_API_BASE": sim.url,
        "ZOHO_ACCOUNTS_BASE": sim.url,
        "ZOHO_CLIENT_ID": "sim-client",
        "ZOHO_CLIENT_SECRET": "sim-secret",
        "ZOHO_REFRESH_TOKEN": "sim-refresh",
        "ZOHO_ORGANIZATION_ID": "60012345",
    }
    env = server_env(pg.url, TDS_Q_WORKERS=str(DRAINERS + 1), **zoho)
    connections.close_all()
    server = cluster = None
    setup_began = time.monotonic()
    try:
        port = free_port()
        # A request waits a second for a pooled connection, then answers 503: while PostgreSQL is
        # stopped, webhooks are refused at once rather than held (the stopped-database test's setting).
        web_env = {**env, "TDS_BIND": f"127.0.0.1:{port}", "TDS_DB_POOL_TIMEOUT": "1"}
        server = Server(gunicorn_argv(), web_env, workdir / "gunicorn.log", port)
        server.wait_answering()
        cluster = Cluster(env, workdir / "qcluster.log")
        # Versions in the recent past, the newest at the end: no webhook's version is in the future.
        # Whole seconds, as the webhooks write them, so a stored version compares equal to the one sent.
        t0 = (timezone.now() - timedelta(seconds=plan.duration * plan.rate + 3600)).replace(microsecond=0)
        senders = Senders(server.url, plan, t0)
        faults, samples = Faults(), {}
        rotation = [
            lambda at: kill_a_drainer(cluster, faults, at),
            lambda at: restart_postgres(pg, plan, faults, at),
            lambda at: zoho_burst(sim, plan, faults, at),
        ]
        print(f"processes up {time.monotonic() - setup_began:.1f} s after the cluster's start", flush=True)
        senders.start()
        began, next_fault, next_sample, k = time.monotonic(), plan.fault_every, 0.0, 0
        while (at := time.monotonic() - began) < plan.duration:
            if at >= next_sample:
                for label, pid in processes(server, cluster, sim).items():
                    if (mb := rss_mb(pid)) is not None:
                        samples.setdefault(label, []).append((at, mb))
                next_sample += plan.rss_every
            if at >= next_fault:
                rotation[k % len(rotation)](at)
                k, next_fault = k + 1, next_fault + plan.fault_every
            time.sleep(0.2)
        senders.stop()
        alive_at_end = set()
        for label, pid in processes(server, cluster, sim).items():  # the end's sample
            if (mb := rss_mb(pid)) is not None:
                samples.setdefault(label, []).append((time.monotonic() - began, mb))
                alive_at_end.add(label)
        settled = wait_drained(plan.settle)
        result = figures(senders, faults)
        result.update(
            rss=rss_growth(samples, alive_at_end, plan.duration),
            drained_after_s=round(settled, 1),
            achieved_rate=round(len(senders.answers) / plan.duration, 1),
            story=faults.story,
        )
        return result
    finally:
        connections.close_all()
        if cluster:
            cluster.stop()
        if server:
            server.stop()
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3600, help="seconds of webhooks")
    parser.add_argument("--rate", type=float, default=50, help="webhooks a second")
    parser.add_argument("--fault-every", type=float, default=300, help="seconds between faults")
    parser.add_argument("--objects", type=int, default=3000, help="objects the versions are spread over")
    parser.add_argument("--rss-every", type=float, default=60, help="seconds between RSS samples")
    parser.add_argument("--smoke", action="store_true", help="14 s of webhooks, each fault once, a PASS/FAIL line")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    args = parser.parse_args()
    plan = plan_from(args)
    initdb = installed_initdb()
    if not initdb:
        sys.exit("bench/soak.py needs PostgreSQL's server programs (initdb, pg_ctl) for a cluster of its own")
    # A stop from systemd or `kill` unwinds like Ctrl-C: the finally blocks remove what was started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    pg = PrivatePostgres(initdb)
    workdir = Path(tempfile.mkdtemp(prefix="tds-soak-"))
    wrong: list[str] = []
    try:
        pg.create()
        # The bench's own Django talks to the private cluster with the processes' settings (the same
        # SECRET_KEY: django-q2 signs the pull tasks the bench enqueues).
        os.environ.update(server_env(pg.url))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tdscore.settings")
        import django

        django.setup()
        configure(plan)
        print(f"cluster made and migrated in {time.monotonic() - began:.1f} s", flush=True)
        result = run(plan, pg, workdir)
        print(table(result, plan))
        print(f"wall time {time.monotonic() - began:.0f} s (the cluster's set-up and the drain included)")
        wrong = failures(result, plan)
        if plan.smoke:
            print(f"soak smoke: {'FAIL: ' + ', '.join(wrong) if wrong else 'PASS'}")
        if args.json:
            print(json.dumps(result, default=str))
        for log in sorted(workdir.glob("*.log")) if wrong else []:
            print(f"--- {log.name} (tail; the whole log is kept in {workdir})", file=sys.stderr)
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
    finally:
        pg.remove()
        if not wrong:  # the logs are kept for a failed run only
            shutil.rmtree(workdir, ignore_errors=True)
    if wrong:
        sys.exit(1)


if __name__ == "__main__":
    main()
