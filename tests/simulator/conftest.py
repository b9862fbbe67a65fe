"""An HTTP caller for the simulator's tests: plain httpx, as Zoho's own docs call the API."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from zohosim import ZohoSimulator

# The project's own copy of the recorded Zoho samples (zohosim/samples/README.md says where each
# comes from): the repository is self-contained, so these tests always run.
SAMPLES = Path(__file__).resolve().parents[2] / "zohosim" / "samples"


class Caller:
    def __init__(self, sim: ZohoSimulator):
        self.sim = sim
        self.http = httpx.Client(base_url=sim.url, timeout=5)
        self.token = ""

    def refresh(self, **overrides: str) -> httpx.Response:
        params = {
            "client_id": "sim-client",
            "client_secret": "sim-secret",
            "grant_type": "refresh_token",
            "refresh_token": "sim-refresh",
            **overrides,
        }
        answer = self.http.post("/oauth/v2/token", data=params)
        self.token = answer.json().get("access_token", self.token)
        return answer

    def get(self, path: str, **params) -> httpx.Response:
        if not self.token:
            self.refresh()
        params.setdefault("organization_id", self.sim.organization_id)
        return self.http.get(path, params=params, headers={"Authorization": f"Zoho-oauthtoken {self.token}"})

    def pages(self, path: str, **params) -> list[httpx.Response]:
        answers, page = [], 1
        while True:
            answer = self.get(path, page=page, **params)
            assert answer.status_code == 200, answer.text
            answers.append(answer)
            if not answer.json()["page_context"]["has_more_page"]:
                return answers
            page += 1


@pytest.fixture
def caller(zoho_sim):
    caller = Caller(zoho_sim)
    yield caller
    caller.http.close()


class Recorder(BaseHTTPRequestHandler):
    """Stands in for TDS Core's webhook receiver: records each delivery, answers 202."""

    def _record(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = _record

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def target(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"
