"""The nginx site in deploy/ passes `nginx -t`, and serves as documented: TLS, the body limit, /metrics
internal only, the proxy headers the TLS settings read, and no token in its access log."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from .conftest import DEPLOY, tool


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def _site(tmp_path: Path, upstream_port: int, http_port: int, https_port: int) -> Path:
    """A whole nginx.conf around deploy/nginx as OPERATIONS.md installs it, with temporary paths."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(tmp_path / "tdscore.key"), "-out", str(tmp_path / "tdscore.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (DEPLOY / "nginx" / "tdscore.conf").read_text()
    for old, new in {
        "/etc/nginx/tdscore_proxy_params": str(DEPLOY / "nginx" / "tdscore_proxy_params"),
        "/etc/ssl/certs/tdscore.pem": str(tmp_path / "tdscore.pem"),
        "/etc/ssl/private/tdscore.key": str(tmp_path / "tdscore.key"),
        "/var/log/nginx/tdscore.access.log": str(tmp_path / "access.log"),
        "127.0.0.1:8000": f"127.0.0.1:{upstream_port}",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "server_name tdscore.example.com;": "server_name localhost;",
    }.items():
        assert old in site, old
        site = site.replace(old, new)
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        daemon off;
        events {{}}
        http {{
            access_log off;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi;
            uwsgi_temp_path {tmp_path}/uwsgi;
            scgi_temp_path {tmp_path}/scgi;
            include {DEPLOY / "nginx" / "tdscore_log_format.conf"};
            {site}
        }}
        """
    )
    return conf


@pytest.fixture
def nginx_site(tmp_path):
    nginx = tool("nginx")
    upstream = _Upstream()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    http_port, https_port = _free_port(), _free_port()
    conf = _site(tmp_path, upstream.server_address[1], http_port, https_port)
    test = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    server = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=0.1).close()
                break
            except OSError:
                threading.Event().wait(0.05)
        context = ssl.create_default_context(cafile=str(tmp_path / "tdscore.pem"))
        with httpx.Client(base_url=f"https://localhost:{https_port}", verify=context, timeout=5) as client:
            yield client, upstream, http_port, tmp_path
    finally:
        server.terminate()
        server.wait(timeout=10)
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
    log = (tmp_path / "access.log").read_text()
    assert "/webhooks/products" in log and "s3cret-token" not in log
