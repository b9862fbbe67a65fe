"""`make run`'s sample data: the demo organisation, its changes, and `manage.py zoho_simulator`."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import httpx

from sync.entities import ENTITIES
from sync.payloads import version_of
from zohosim import ZohoSimulator
from zohosim.demo import DEMO_COUNTS, demo_tick, seed_demo

from .conftest import target

REPO = Path(__file__).resolve().parents[2]


def test_demo_seeds_every_entity():
    sim = ZohoSimulator()
    seed_demo(sim)
    assert {slug: len(sim.all(slug)) for slug in ENTITIES} == DEMO_COUNTS


def webhook_json(body: bytes) -> dict:
    """The JSON of a delivery, whether sent as JSON or as Zoho's default `JSONString=` form."""
    text = body.decode()
    return json.loads(parse_qs(text)["JSONString"][0] if text.startswith("JSONString=") else text)


def test_demo_changes_records_and_announces_most_of_them(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_token="tok")
    seed_demo(sim)
    started = sim.now().replace(microsecond=0)
    changes = demo_tick(sim, random.Random(3), changes=30)
    delivered = [c for c in changes if c.delivered == 202]
    assert len(receiver.seen) == len(delivered) and 0 < len(delivered) < len(changes)
    deleted = {(c.slug, c.zoho_id) for c in changes if c.action == "deleted"}
    for change in delivered:
        if change.action != "deleted" and change.slug != "stock" and (change.slug, change.zoho_id) not in deleted:
            assert version_of(sim.get(change.slug, change.zoho_id)) >= started
    assert {next(iter(webhook_json(body))) for *_, body in receiver.seen} <= {
        "invoice",
        "item",
        "bill",
        "salesorder",
        "payment",
        "contact",
        "creditnote",
    }


def test_demo_survives_tds_core_being_down():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    sim = ZohoSimulator(webhook_target=closed, webhook_token="tok")
    seed_demo(sim)
    assert all(c.delivered is None for c in demo_tick(sim, random.Random(1), changes=5))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_command_serves_the_demo_and_stops_on_sigterm(receiver):
    port = _free_port()
    env = {
        **os.environ,
        "ZOHO_CLIENT_ID": "cid",
        "ZOHO_CLIENT_SECRET": "csecret",
        "ZOHO_REFRESH_TOKEN": "rtoken",
        "ZOHO_ORGANIZATION_ID": "777",
        "TDS_WEBHOOK_TOKEN": "hooktoken",
    }
    command = [sys.executable, "manage.py", "zoho_simulator", "--port", str(port), "--demo", "--interval", "0.2"]
    command += ["--webhook-target", target(receiver)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert "Zoho simulator on" in process.stdout.readline()
        assert "Seeded" in process.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        token = httpx.post(
            f"{url}/oauth/v2/token",
            data={"client_id": "cid", "client_secret": "csecret", "refresh_token": "rtoken"}
            | {"grant_type": "refresh_token"},
        ).json()["access_token"]
        answer = httpx.get(
            f"{url}/books/v3/invoices",
            params={"organization_id": "777"},
            headers={"Authorization": f"Zoho-oauthtoken {token}"},
        )
        assert answer.status_code == 200 and answer.headers["x-rate-limit-limit"] == "1000"
        deadline = time.monotonic() + 10
        while not receiver.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.seen and receiver.seen[0][2]["X-TDS-Token"] == "hooktoken"
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and "stopped" in out
