"""`make run`: the whole of TDS Core on one machine.

Writes `.env` on the first run, migrates, creates the admin user, collects static files, then runs
the web server (gunicorn), the django-q2 cluster and the Zoho simulator side by side. Ctrl-C or
SIGTERM stops them all; if one of them dies the others are stopped and the exit code is non-zero.

Once the simulator answers, a one-shot child pulls every entity in full that has never had a full
pull (`sync_zoho --entity all --mode full --first-pull`: on a new database, all of them), within the
plan's budget, its progress printed here; so the ERP is complete minutes after the start rather than
after the nightly full pull. Its end, however it ends, stops nothing.

    python -m tdscore.devserver [--port 8000] [--simulator-port 8001]

`TDS_ENV_FILE` names the `.env` to use (default: the one beside manage.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections

BASE_DIR = Path(__file__).resolve().parent.parent
ADMIN_USERNAME = "admin"
# A child still running this long after it was asked to stop is killed (its drains' leases expire).
STOP_GRACE_SECONDS = 10
# How long the first pull waits for the simulator to listen before it starts anyway (its client
# retries a refused connection as a transient failure).
SIMULATOR_START_SECONDS = 30


def generated_settings(simulator_url: str) -> dict[str, str]:
    """What the first run writes: secrets nobody should have to invent, and the simulator's credentials."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TDS_WEBHOOK_TOKEN": secrets.token_urlsafe(24),
        "TDS_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        # The built-in simulator accepts whatever credentials it is started with (it reads these too).
        "ZOHO_CLIENT_ID": f"1000.SIM{secrets.token_hex(8).upper()}",
        "ZOHO_CLIENT_SECRET": secrets.token_hex(20),
        "ZOHO_REFRESH_TOKEN": f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}",
        "ZOHO_ORGANIZATION_ID": "60012345",
        "ZOHO_API_BASE": simulator_url,
        "ZOHO_ACCOUNTS_BASE": simulator_url,
    }


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


def ensure_env_file(path: Path, simulator_url: str) -> dict[str, str]:
    """Append the generated settings the file lacks; return what was added (empty after the first run)."""
    existing = read_env_file(path) if path.exists() else {}
    added = {name: value for name, value in generated_settings(simulator_url).items() if name not in existing}
    if added:
        lines = ["# Written by `make run` (tdscore/devserver.py). Edit freely; see README.md for every variable."]
        lines += [f"{name}={value}" for name, value in added.items()]
        with path.open("a") as file:
            file.write(("\n" if existing else "") + "\n".join(lines) + "\n")
        path.chmod(0o600)  # it holds secrets
    return added


def prepare(admin_password: str) -> bool:
    """Migrate, create the admin user once, collect static files, install the schedules.

    Returns whether the admin user was created.
    """
    django.setup()
    print("Migrating the database…", flush=True)
    call_command("migrate", interactive=False, verbosity=0)
    users = get_user_model().objects
    created = not users.filter(username=ADMIN_USERNAME).exists()
    if created:
        users.create_superuser(ADMIN_USERNAME, "admin@localhost", admin_password)
    print("Collecting static files…", flush=True)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("setup_schedules")
    # Children open their own connections; this process keeps none across the fork.
    connections.close_all()
    return created


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    # How the child is asked to stop. The default, SIGTERM to the leader, is a graceful stop for
    # gunicorn's master (in-flight webhooks are answered) and for the simulator.
    stop_signal: signal.Signals = signal.SIGTERM
    whole_group: bool = False
    after: Child | None = None  # asked to stop only once this one has exited
    one_shot: bool = False  # a task that ends by itself: its exit is reported, and stops nothing
    reported: bool = False

    def request_stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.whole_group:
                os.killpg(self.process.pid, self.stop_signal)
            else:
                self.process.send_signal(self.stop_signal)

    def kill_group(self) -> None:
        # Each child leads its own process group: this reaches the workers a dead leader left behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def start(name: str, argv: list[str], **stop: Any) -> Child:
    # A new session: a terminal's Ctrl-C reaches only this supervisor, which stops children in order.
    return Child(name, subprocess.Popen(argv, cwd=BASE_DIR, start_new_session=True), **stop)


def stop_all(children: list[Child]) -> None:
    """Ask each child to stop (those with `after` once it has exited); kill what outlives the grace."""
    asked: set[int] = set()
    running = children
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while running and time.monotonic() < deadline:
        for child in running:
            if id(child) not in asked and (child.after is None or child.after.process.poll() is not None):
                child.request_stop()
                asked.add(id(child))
        time.sleep(0.05)
        running = [child for child in running if child.process.poll() is None]
    for child in running:
        # Safe: a killed drainer's leased rows come back when their lease expires.
        print(f"{child.name} did not stop in {STOP_GRACE_SECONDS} s; killing it.", flush=True)
        child.kill_group()
        child.process.wait()
    for child in children:
        child.kill_group()


def catch_stop_signals() -> list[int]:
    """From here on Ctrl-C and SIGTERM are recorded, not raised, so no child is left behind."""
    received: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: received.append(signum))
    return received


def report_one_shots(children: list[Child]) -> None:
    for child in children:
        if child.one_shot and not child.reported and child.process.poll() is not None:
            child.reported = True
            code = child.process.returncode
            outcome = "finished" if code == 0 else f"ended with code {code} (its output above says why)"
            print(f"{child.name} {outcome}; the rest keeps running.", flush=True)


def supervise(children: list[Child], stop_requested: list[int]) -> int:
    """Wait for a stop signal or a child's death; stop everything; 0 only for a requested stop.
    A one-shot child's end is reported and stops nothing."""
    dead = None
    while not stop_requested and dead is None:
        report_one_shots(children)
        dead = next((c for c in children if not c.one_shot and c.process.poll() is not None), None)
        time.sleep(0.2)
    if dead is not None:
        print(f"{dead.name} exited with code {dead.process.returncode}; stopping the rest.", flush=True)
    else:
        print("Stopping…", flush=True)
    stop_all(children)
    return 1 if dead is not None else 0


def wait_for_port(host: str, port: int, *, seconds: float, stop_requested: list[int]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop_requested:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return True
        time.sleep(0.2)
    return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--simulator-port", type=int, default=8001)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--demo-interval", type=float, default=5.0, help="seconds between the simulator's changes")
    parser.add_argument(
        "--no-first-pull", action="store_true", help="do not pull every never-pulled entity in full at the start"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env_file = Path(os.environ.get("TDS_ENV_FILE", BASE_DIR / ".env"))
    added = ensure_env_file(env_file, f"http://127.0.0.1:{args.simulator_port}")
    if added:
        print(f"Wrote {env_file} with generated settings:", flush=True)
        for name, value in added.items():
            print(f"  {name}={'(hidden)' if name == 'SECRET_KEY' else value}", flush=True)
    # The environment wins over the file, as in settings.py; children inherit the result.
    for name, value in read_env_file(env_file).items():
        os.environ.setdefault(name, value)
    os.environ["TDS_ENV_FILE"] = str(env_file)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tdscore.settings")

    admin_password = os.environ["TDS_ADMIN_PASSWORD"]
    created = prepare(admin_password)
    python, manage = sys.executable, str(BASE_DIR / "manage.py")
    url = f"http://{args.host}:{args.port}"
    stop_requested = catch_stop_signals()
    web_server, cluster = (
        start(
            "web server",
            # The root's gunicorn.conf.py, as the systemd unit uses it (gthread, redacted access log).
            [python, "-m", "gunicorn", "-c", str(BASE_DIR / "gunicorn.conf.py"), "tdscore.wsgi:application"]
            + ["--bind", f"{args.host}:{args.port}", "--workers", str(args.web_workers)],
        ),
        # What a terminal's Ctrl-C does to a qcluster in the foreground: SIGINT to its whole process
        # group. The cluster stops; its workers' drains hear it, finish or release their batch and
        # return (sync.worker.listen_for_cluster_stop). SIGTERM to the leader alone left django-q2
        # waiting for a busy drain until its 60 s deadline.
        start("django-q2 cluster", [python, manage, "qcluster"], stop_signal=signal.SIGINT, whole_group=True),
    )
    simulator = start(
        "Zoho simulator",
        [python, manage, "zoho_simulator", "--port", str(args.simulator_port), "--demo"]
        + ["--interval", str(args.demo_interval), "--webhook-target", url],
        # Zoho outlives the cluster: a pull task running at the stop finishes its page and stops,
        # instead of retrying calls to a simulator that is gone.
        after=cluster,
    )
    children = [web_server, cluster, simulator]

    print(f"\nTDS Core is starting on {url}", flush=True)
    print(f"  admin:  {url}/admin/  username: {ADMIN_USERNAME}  password: {admin_password}", flush=True)
    if not created:
        print(f"  (the password is TDS_ADMIN_PASSWORD in {env_file}, unless changed in the admin since)", flush=True)
    print(f"  health: {url}/health and {url}/health/ready", flush=True)
    print(f"  webhooks: POST {url}/webhooks/<entity> with X-TDS-Token set to TDS_WEBHOOK_TOKEN", flush=True)
    print("Ctrl-C stops everything.\n", flush=True)
    if not args.no_first_pull and not stop_requested:
        wait_for_port("127.0.0.1", args.simulator_port, seconds=SIMULATOR_START_SECONDS, stop_requested=stop_requested)
        print("First full pull of the entities never pulled (on a new database, all of them):", flush=True)
        first_pull = start(
            "first full pull",
            [python, manage, "sync_zoho", "--entity", "all", "--mode", "full", "--first-pull"],
            one_shot=True,
        )
        # Asked to stop first (the simulator waits for the cluster), so its run ends at a page
        # boundary, checkpointed, while Zoho still answers; the next make run resumes it.
        children = [first_pull, web_server, cluster, simulator]
    return supervise(children, stop_requested)


if __name__ == "__main__":
    sys.exit(main())
