"""PostgreSQL stopped during ingest and drain: a private cluster the test makes and runs on its own
port and socket directory (never the shared server), gunicorn and a drainer pointed at it, webhooks
posted at a steady rate while the server is stopped for ten seconds and started again. Meanwhile
webhooks answer 503, never 500; every webhook answered 2xx, before or after the outage, reaches the
ERP; gunicorn and the drainer are the processes started before the outage: they reconnect alone.
The drainer is a `process_queue`, then a qcluster whose drain tasks end every two seconds, so hand-
overs fall inside the outage: the chain of drain tasks must survive it, not wait for the watchdog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest

from erp.models import Product
from sync.config_keys import HEARTBEAT_PERIOD_SECONDS, LOCK_TIMEOUT_SECONDS, QUEUE_POLL_INTERVAL_MS
from sync.models import InboxEvent
from tests.infra.conftest import ROOT, TOKEN, server_env
from tests.infra.private_postgres import private_cluster

pytestmark = pytest.mark.postgres

OUTAGE_SECONDS = 10
SENDERS = 4  # threads, each posting a webhook every SEND_EVERY_SECONDS: ~20 a second in all
SEND_EVERY_SECONDS = 0.2
BEFORE_SECONDS = 2  # webhooks posted before the stop
AFTER_SECONDS = 2  # and after the first 2xx that follows the restart
SETTLE_SECONDS = 0.5  # answers counted as "during" begin this long after the stop
RECOVERED_WITHIN_SECONDS = 20  # from the restart to gunicorn's first 2xx
APPLIED_WITHIN_SECONDS = 15  # from the last webhook to the last one in the ERP
# A request waits this long for a pooled connection before it answers 503 (short for the test).
ENV = {"TDS_DB_POOL_TIMEOUT": "1"}
# The processes' short durations, stored in the private database as an operator stores them.
CONFIGURE = f"""
from django.core.management import call_command
from tdscore import config
call_command("migrate", verbosity=0)
config.update_many({{
    "{LOCK_TIMEOUT_SECONDS.name}": 2, "{HEARTBEAT_PERIOD_SECONDS.name}": 1, "{QUEUE_POLL_INTERVAL_MS.name}": 100,
}})
"""


@pytest.fixture
def private_postgres():
    with private_cluster() as cluster:
        yield cluster


class Senders:
    """Threads posting product webhooks on a steady beat, each a new object; every answer is kept."""

    def __init__(self, url: str):
        self.url = url
        self.answers: dict[str, int | str] = {}  # object id → status code, or the transport error
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

    def _send(self, sender: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10, headers={"X-TDS-Token": TOKEN}) as client:
            n = 0
            while not self.stopping.is_set():
                object_id = f"s{sender}-{n}"
                body = {
                    "item_id": object_id,
                    "name": f"product {object_id}",
                    "last_modified_time": "2026-07-01T10:00:00Z",
                }
                try:
                    answer: int | str = client.post("/webhooks/products", json=body).status_code
                except httpx.TransportError as exc:
                    answer = type(exc).__name__
                with self.lock:
                    self.answers[object_id] = answer
                n += 1
                self.stopping.wait(SEND_EVERY_SECONDS)

    def acknowledged(self) -> set[str]:
        with self.lock:
            return {object_id for object_id, code in self.answers.items() if isinstance(code, int) and code < 300}

    def tally(self) -> Counter:
        with self.lock:
            return Counter(self.answers.values())


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


# The drainers under test, and what each needs in its environment (a deployment's settings).
DRAINERS = {
    "process_queue": ([sys.executable, "manage.py", "process_queue"], {}),
    "qcluster": (
        [sys.executable, "manage.py", "qcluster"],
        {"TDS_Q_WORKERS": "2", "TDS_DRAIN_DEADLINE_SECONDS": "2"},
    ),
}


@pytest.mark.parametrize("drainer_kind", list(DRAINERS))
def test_webhooks_answer_503_while_postgresql_is_stopped_and_every_2xx_reaches_the_erp(
    private_postgres, start_server, tmp_path, drainer_kind
):
    pg = private_postgres
    env = server_env(pg.url, **ENV)
    configured = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CONFIGURE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert configured.returncode == 0, configured.stderr
    server = start_server("gunicorn", env)
    drainer_log = tmp_path / "drainer.log"
    with drainer_log.open("w") as out:
        command, settings = DRAINERS[drainer_kind]
        drainer = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, **settings},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a cluster's workers are its children: stopped as one group
        )
    story = []
    try:
        with Senders(server.url) as senders:
            time.sleep(BEFORE_SECONDS)
            pg.stop("fast")
            stopped = time.monotonic()
            time.sleep(SETTLE_SECONDS)  # an answer already on its way when the server stopped
            before = senders.tally()
            time.sleep(OUTAGE_SECONDS - SETTLE_SECONDS)
            during = senders.tally() - before
            pg.start()
            story.append(f"stopped {time.monotonic() - stopped:.1f} s; answers meanwhile {dict(during)}")
            acknowledged_then = len(senders.acknowledged())
            recovered = wait_until(lambda: len(senders.acknowledged()) > acknowledged_then, RECOVERED_WITHIN_SECONDS)
            story.append(
                f"first 2xx {time.monotonic() - stopped - OUTAGE_SECONDS:.1f} s after the restart"
                if recovered
                else f"no 2xx within {RECOVERED_WITHIN_SECONDS} s of the restart"
            )
            time.sleep(AFTER_SECONDS if recovered else 0)
        acknowledged = senders.acknowledged()
        table = Product._meta.db_table

        def applied() -> set[str]:
            return {
                row[0] for row in pg.query(f"SELECT zoho_id FROM {table} WHERE zoho_id = ANY(%s)", [list(acknowledged)])
            }

        last_sent = time.monotonic()
        wait_until(lambda: applied() >= acknowledged, APPLIED_WITHIN_SECONDS)
        story.append(f"applied {time.monotonic() - last_sent:.1f} s after the last webhook")
        in_erp = applied()
        stored = pg.query(f"SELECT count(*) FROM {InboxEvent._meta.db_table}")[0][0]
        drainer_alive, server_alive = drainer.poll() is None, server.process.poll() is None
    finally:
        if drainer.poll() is None:
            os.killpg(drainer.pid, signal.SIGTERM)
        try:
            drainer.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(drainer.pid, signal.SIGKILL)
            drainer.wait()
    tally = senders.tally()
    counts = {
        "sent": sum(tally.values()),
        "2xx": sum(n for code, n in tally.items() if isinstance(code, int) and code < 300),
        "503": tally[503],
        "5xx other": sum(n for code, n in tally.items() if isinstance(code, int) and code >= 500 and code != 503),
        "other": {code: n for code, n in tally.items() if not isinstance(code, int) or 300 <= code < 500},
        "stored": stored,
        "applied": len(in_erp),
        "lost": len(acknowledged - in_erp),
    }
    message = (
        f"{'; '.join(story)}\ncounts: {counts}\n"
        f"drainer log (tail):\n{drainer_log.read_text(errors='replace')[-1500:]}\n"
        f"gunicorn log (tail):\n{server.output()[-1500:]}"
    )
    print(f"{'; '.join(story)}\ncounts: {counts}")
    assert during[503] > 0 and sum(during.values()) == during[503], message  # 503 while down, nothing else
    assert counts["5xx other"] == 0 and not counts["other"], message
    assert recovered and drainer_alive and server_alive, message  # the same processes, no restart
    assert counts["lost"] == 0, message
