"""A real HTTP server on 127.0.0.1 that records what the channels post (Slack, webhook, Telegram)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived
    wall: float  # time.time() when it arrived, to compare with timestamps other processes wrote

    def json(self):
        return json.loads(self.body)


class RecordingServer:
    """Answers each path with what `answer()` set for it (200 by default), after an optional delay."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answers: dict[str, tuple[int, float]] = {}
        self.answered: dict[str, float] = {}  # path → time.monotonic() of the last answer
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with server._lock:
                    server.requests.append(
                        Request(self.path, dict(self.headers.items()), body, time.monotonic(), time.time())
                    )
                status, delay = server.answers.get(self.path.split("?")[0], (200, 0.0))
                time.sleep(delay)  # a slow receiver, as a real one on a bad day
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": %s}' % (b"true" if status < 300 else b"false"))
                server.answered[self.path] = time.monotonic()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, status: int, *, delay: float = 0.0) -> None:
        self.answers[path] = (status, delay)

    def to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> RecordingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


SLACK, HOOK, TELEGRAM_TOKEN = "/slack", "/hook", "123:abc"
TELEGRAM = f"/bot{TELEGRAM_TOKEN}/sendMessage"
# A Standard Webhooks secret: whsec_ + base64 of the key bytes.
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def recorder():
    with RecordingServer() as server:
        yield server


@pytest.fixture
def channels_on(settings, recorder):
    """Every channel enabled: Slack, webhook and Telegram at the recorder, e-mail in Django's outbox."""
    settings.SLACK_WEBHOOK_URL = recorder.url + SLACK
    settings.ALERT_WEBHOOK_URL = recorder.url + HOOK
    settings.ALERT_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.TELEGRAM_API_BASE = recorder.url
    settings.TELEGRAM_BOT_TOKEN = TELEGRAM_TOKEN
    settings.TELEGRAM_CHAT_ID = "42"
    settings.ALERT_EMAIL_TO = ["ops@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.TDS_BASE_URL = "https://tds.example.com"
    return recorder


@pytest.fixture
def only_channels(settings, channels_on):
    """Switch channels off by name: only_channels("slack", "telegram")."""

    def keep(*names: str) -> None:
        off = {
            "slack": ("SLACK_WEBHOOK_URL",),
            "webhook": ("ALERT_WEBHOOK_URL",),
            "telegram": ("TELEGRAM_BOT_TOKEN",),
            "email": ("ALERT_EMAIL_TO",),
        }
        for name, variables in off.items():
            if name not in names:
                for variable in variables:
                    setattr(settings, variable, [] if variable == "ALERT_EMAIL_TO" else "")

    return keep
