from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.infra.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def tool(name: str) -> str:
    """The path of a Debian tool the deployment tests need; a skip (a failure under CI=true) without it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return path


def site_conf(tmp_path: Path, upstream_port: int, http_port: int, https_port: int) -> Path:
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


@contextmanager
def running_site(tmp_path: Path, upstream_port: int) -> Iterator[tuple[int, int]]:
    """nginx serving the site in front of `upstream_port` on loopback: (http port, https port), the
    certificate in tmp_path/tdscore.pem; `nginx -t` passes first. Stopped on leaving."""
    nginx = tool("nginx")
    http_port, https_port = free_port(), free_port()
    conf = site_conf(tmp_path, upstream_port, http_port, https_port)
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
        yield http_port, https_port
    finally:
        server.terminate()
        server.wait(timeout=10)
