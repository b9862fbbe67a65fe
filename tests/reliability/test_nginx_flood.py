"""The shipped nginx site (deploy/nginx) in front of a real gunicorn and a `process_queue` drainer,
under the two floods a public webhook endpoint meets.

1. Slow clients: 300 TLS connections that trickle a webhook a byte a second (its header, or its
   body after a whole header) or stall halfway through the body, for about ten seconds, while a
   normal client keeps posting webhooks and polling /health. nginx holds the slow ones (gunicorn
   never sees them) and ends those its time-outs cover, at those time-outs: a header not whole
   within client_header_timeout, a body stalled for client_body_timeout (a 408 in nginx's log, the
   connection reset: reset_timedout_connection). Every normal
   webhook answered 2xx is in the ERP, /health answers 200 within a bound throughout, no 5xx.
2. A burst: 20 webhooks a second, then ten times that for a few seconds. Nothing answered 2xx is
   lost, nothing answers 5xx, /health keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest

from erp.models import Product
from sync.models import InboxEvent
from tests.deploy.conftest import DEPLOY, running_site
from tests.infra.conftest import ROOT, TOKEN, server_env, shared_database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SLOW_CLIENTS = 300  # a third of each kind: header trickle, body trickle, body stalled
TRICKLE_SECONDS = 10
LINGER_SECONDS = 5  # a slow client waits this long past its trickle for nginx to end it
NORMAL_EVERY_SECONDS = 0.1  # the normal client's webhooks during the flood
HEALTH_EVERY_SECONDS = 0.25
HEALTH_WITHIN_SECONDS = 2.0  # each /health answer, however many slow clients nginx holds
STEADY_RATE, BURST_RATE = 20, 200  # webhooks a second
STEADY_SECONDS, BURST_SECONDS = 2, 3
LANES = 16  # the burst's sender threads
APPLIED_WITHIN_SECONDS = 30


def timeout_of(directive: str) -> float:
    """A time-out of the shipped site, in seconds: the test holds nginx to what it ships."""
    found = re.search(rf"^\s*{directive} (\d+)s;", (DEPLOY / "nginx" / "tdscore.conf").read_text(), re.M)
    assert found, f"deploy/nginx/tdscore.conf sets no {directive}"
    return float(found[1])


def webhook(object_id: str) -> dict:
    return {"item_id": object_id, "name": f"product {object_id}", "last_modified_time": "2026-07-01T10:00:00Z"}


class Tally:
    """Every answer the normal senders got, by object id, and every /health answer."""

    def __init__(self):
        self.answers: dict[str, int | str] = {}
        self.health: list[tuple[int | str, float]] = []  # (status or error, seconds)
        self.lock = threading.Lock()

    def post(self, client: httpx.Client, object_id: str) -> None:
        try:
            answer: int | str = client.post("/webhooks/products", json=webhook(object_id)).status_code
        except httpx.TransportError as exc:
            answer = type(exc).__name__
        with self.lock:
            self.answers[object_id] = answer

    def poll_health(self, client: httpx.Client) -> None:
        began = time.monotonic()
        try:
            answer: int | str = client.get("/health").status_code
        except httpx.TransportError as exc:
            answer = type(exc).__name__
        with self.lock:
            self.health.append((answer, time.monotonic() - began))

    def acknowledged(self) -> set[str]:
        with self.lock:
            return {key for key, code in self.answers.items() if isinstance(code, int) and code < 300}

    def counts(self) -> dict:
        with self.lock:
            codes = Counter(self.answers.values())
            slowest = max((seconds for _, seconds in self.health), default=0.0)
            health = Counter(code for code, _ in self.health)
        acknowledged = self.acknowledged()
        applied = set(Product.objects.filter(zoho_id__in=acknowledged).values_list("zoho_id", flat=True))
        return {
            "sent": sum(codes.values()),
            "2xx": len(acknowledged),
            "5xx": sum(n for code, n in codes.items() if isinstance(code, int) and code >= 500),
            "other": {code: n for code, n in codes.items() if not isinstance(code, int) or 300 <= code < 500},
            "stored": InboxEvent.objects.filter(object_id__in=list(self.answers)).count(),
            "applied": len(applied),
            "lost": len(acknowledged - applied),
            "health": dict(health),
            "slowest_health_s": round(slowest, 2),
        }


def applied_all(tally: Tally) -> bool:
    acknowledged = tally.acknowledged()
    return Product.objects.filter(zoho_id__in=acknowledged).count() == len(acknowledged)


def wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


async def slow_client(n: int, port: int, context: ssl.SSLContext, outcomes: Counter, ends: list[float]) -> None:
    """One slow client; counts how it ended: `held` (nginx kept it until the client left), `closed`
    (nginx closed it without an answer), the status nginx answered, or `refused`."""
    kind = ("header trickle", "body trickle", "body stalled")[n % 3]
    body = json.dumps(webhook(f"slow-{n}")).encode()
    head = (
        f"POST /webhooks/products HTTP/1.1\r\nHost: localhost\r\nX-TDS-Token: {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    first, trickle = {
        "header trickle": (b"", head),
        "body trickle": (head, body),
        "body stalled": (head + body[:5], b""),
    }[kind]
    began = time.monotonic()  # nginx's header time-out runs from its accept, before the TLS handshake
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    except OSError:
        outcomes[f"{kind}: refused"] += 1
        return
    ended = "held"
    try:
        writer.write(first)
        await writer.drain()
        sent = 0
        while time.monotonic() - began < TRICKLE_SECONDS + LINGER_SECONDS:
            if sent < len(trickle) and time.monotonic() - began < TRICKLE_SECONDS:
                writer.write(trickle[sent : sent + 1])
                await writer.drain()
                sent += 1
            try:
                answer = await asyncio.wait_for(reader.read(64), timeout=1)
            except TimeoutError:
                continue
            ended = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/") else "closed"
            break
    except OSError:  # ssl.SSLError too: nginx reset the connection
        ended = "closed"
    finally:
        if ended != "held":
            ends.append(time.monotonic() - began)
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout=1)
    outcomes[f"{kind}: {ended}"] += 1


async def flood(port: int, context: ssl.SSLContext) -> tuple[Counter, list[float]]:
    """How the slow clients ended, and after how many seconds those that nginx ended."""
    outcomes: Counter = Counter()
    ends: list[float] = []
    await asyncio.gather(*(slow_client(n, port, context, outcomes, ends) for n in range(SLOW_CLIENTS)))
    return outcomes, ends


def normal_client(url: str, context: ssl.SSLContext, tally: Tally, stopping: threading.Event, prefix: str) -> None:
    """Webhooks on a beat, /health between them, until `stopping`."""
    with httpx.Client(base_url=url, verify=context, timeout=10, headers={"X-TDS-Token": TOKEN}) as client:
        n, next_health = 0, 0.0
        while not stopping.is_set():
            tally.post(client, f"{prefix}-{n}")
            n += 1
            if time.monotonic() >= next_health:
                tally.poll_health(client)
                next_health = time.monotonic() + HEALTH_EVERY_SECONDS
            stopping.wait(NORMAL_EVERY_SECONDS)


def burst(url: str, context: ssl.SSLContext, tally: Tally) -> float:
    """STEADY_RATE for STEADY_SECONDS, then BURST_RATE for BURST_SECONDS, on a fixed timetable."""
    times = [k / STEADY_RATE for k in range(STEADY_RATE * STEADY_SECONDS)]
    times += [STEADY_SECONDS + k / BURST_RATE for k in range(BURST_RATE * BURST_SECONDS)]
    began = time.monotonic() + 0.2

    def lane(k: int) -> None:
        with httpx.Client(base_url=url, verify=context, timeout=10, headers={"X-TDS-Token": TOKEN}) as client:
            for n in range(k, len(times), LANES):
                time.sleep(max(0.0, began + times[n] - time.monotonic()))
                tally.post(client, f"burst-{n}")

    threads = [threading.Thread(target=lane, args=(k,)) for k in range(LANES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(times) / (time.monotonic() - began)


@pytest.fixture
def site(start_server, tmp_path):
    """(https URL, TLS context) of nginx in front of gunicorn, with a drainer applying the queue."""
    env = server_env(shared_database_url())
    server = start_server("gunicorn", env)
    drainer = subprocess.Popen(
        [sys.executable, "manage.py", "process_queue"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with running_site(tmp_path, server.port) as (_, https_port):
            context = ssl.create_default_context(cafile=str(tmp_path / "tdscore.pem"))
            yield f"https://localhost:{https_port}", https_port, context, server
    finally:
        drainer.terminate()
        try:
            drainer.wait(timeout=15)
        except subprocess.TimeoutExpired:
            drainer.kill()
            drainer.wait()


def test_slow_clients_are_held_or_timed_out_by_nginx_while_webhooks_and_health_go_on(site):
    url, port, context, server = site
    tally, stopping = Tally(), threading.Event()
    normal = threading.Thread(target=normal_client, args=(url, context, tally, stopping, "flood"))
    normal.start()
    try:
        began = time.monotonic()
        outcomes, ends = asyncio.run(flood(port, context))
        flooded = time.monotonic() - began
    finally:
        stopping.set()
        normal.join(timeout=30)
    wait_until(lambda: applied_all(tally), APPLIED_WITHIN_SECONDS)
    counts = tally.counts()
    message = (
        f"slow clients for {flooded:.1f} s: {dict(outcomes)}, those ended by nginx after "
        f"{min(ends, default=0):.1f}-{max(ends, default=0):.1f} s\nnormal client: {counts}\n"
        f"gunicorn log (tail):\n{server.output()[-1500:]}"
    )
    print(message.split("\ngunicorn")[0])
    header, body = timeout_of("client_header_timeout"), timeout_of("client_body_timeout")
    assert header <= TRICKLE_SECONDS and body <= TRICKLE_SECONDS, "the time-outs are longer than the flood"
    # nginx's time-outs end the clients they cover: a header not whole in time, a body that stalled.
    ended_by_nginx = {
        kind: sum(
            n
            for outcome, n in outcomes.items()
            if outcome.startswith(kind) and not outcome.endswith(("held", "refused"))
        )
        for kind in ("header trickle", "body stalled")
    }
    assert ended_by_nginx == {"header trickle": SLOW_CLIENTS // 3, "body stalled": SLOW_CLIENTS // 3}, message
    assert outcomes["body trickle: held"] == SLOW_CLIENTS // 3, message  # a body still coming is waited for
    assert min(header, body) - 1 <= min(ends) and max(ends) <= max(header, body) + LINGER_SECONDS, message
    assert not any("refused" in outcome for outcome in outcomes), message
    assert not InboxEvent.objects.filter(object_id__startswith="slow-").exists(), message  # none reached the app
    assert counts["sent"] > 0 and counts["5xx"] == 0 and not counts["other"], message
    assert counts["lost"] == 0, message
    assert set(counts["health"]) == {200} and counts["slowest_health_s"] <= HEALTH_WITHIN_SECONDS, message


def test_a_tenfold_burst_loses_nothing_acknowledged_and_health_answers(site):
    url, _, context, server = site
    tally, stopping = Tally(), threading.Event()
    health = threading.Thread(target=normal_client, args=(url, context, tally, stopping, "beside-burst"))
    health.start()
    try:
        achieved = burst(url, context, tally)
    finally:
        stopping.set()
        health.join(timeout=30)
    wait_until(lambda: applied_all(tally), APPLIED_WITHIN_SECONDS)
    counts = tally.counts()
    message = f"burst sent at {achieved:.0f}/s on average: {counts}\ngunicorn log (tail):\n{server.output()[-1500:]}"
    print(message.split("\ngunicorn")[0])
    assert sum(key.startswith("burst-") for key in tally.answers) == STEADY_RATE * STEADY_SECONDS + (
        BURST_RATE * BURST_SECONDS
    ), message
    assert counts["5xx"] == 0 and not counts["other"], message
    assert counts["lost"] == 0, message
    assert counts["health"] and set(counts["health"]) == {200}, message
