"""The nginx site in deploy/ passes `nginx -t`, and serves as documented: TLS, the body limit, /metrics
internal only, the proxy headers the TLS settings read, and no token in its access log."""

from __future__ import annotations

import http.server
import ssl
import threading
import time

import httpx
import pytest

from .conftest import running_site


class _Upstream(http.server.ThreadingHTTPServer):
    """Stands in for gunicorn: answers 200 and remembers each request's path and headers."""

    def __init__(self):
        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.seen.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def nginx_site(tmp_path):
    upstream = _Upstream()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with running_site(tmp_path, upstream.server_address[1]) as (http_port, https_port):
            context = ssl.create_default_context(cafile=str(tmp_path / "tdscore.pem"))
            with httpx.Client(base_url=f"https://localhost:{https_port}", verify=context, timeout=5) as client:
                yield client, upstream, http_port, tmp_path
    finally:
        upstream.shutdown()


def test_the_site_passes_nginx_t_and_proxies_over_tls_with_the_forwarded_proto(nginx_site):
    client, upstream, _, _ = nginx_site
    assert client.get("/admin/").status_code == 200
    path, headers = upstream.seen[-1]
    assert path == "/admin/" and headers["X-Forwarded-Proto"] == "https" and headers["Host"].startswith("localhost")


def test_plain_http_redirects_to_tls_but_health_answers(nginx_site):
    _, _, http_port, _ = nginx_site
    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=5) as plain:
        assert plain.get("/admin/").status_code == 301
        assert plain.get("/health").status_code == 200


def test_a_body_over_the_webhook_limit_is_refused_before_the_app(nginx_site):
    client, upstream, _, _ = nginx_site
    before = len(upstream.seen)
    assert client.post("/webhooks/products", content=b"x" * (3 * 1024 * 1024)).status_code == 413
    assert len(upstream.seen) == before


def test_the_access_log_never_shows_the_webhook_token(nginx_site):
    client, _, _, tmp_path = nginx_site
    assert client.post("/webhooks/products?token=s3cret-token", json={"item_id": "1"}).status_code == 200
    client.close()
    log, deadline = "", time.monotonic() + 5
    while "/webhooks/products" not in log and time.monotonic() < deadline:
        time.sleep(0.05)  # nginx writes the line once the answer has gone, a moment after the client has it
        log = (tmp_path / "access.log").read_text()
    assert "/webhooks/products" in log and "s3cret-token" not in log
