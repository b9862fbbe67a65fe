"""HTTPS behind the TLS proxy is set from the environment; by default `make run`
serves plain http on 127.0.0.1, and health probes stay plain http behind the proxy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.infra.conftest import ROOT, server_env

HTTPS_WARNINGS = ("security.W004", "security.W008", "security.W012", "security.W016")
TLS_ENV = {
    "TDS_SECURE_SSL_REDIRECT": "true",
    "TDS_HSTS_SECONDS": "31536000",
    "TDS_SECURE_COOKIES": "true",
    "TDS_PROXY_SSL_HEADER": "true",
    "ALLOWED_HOSTS": "tds.example.com",
}


def check_deploy(**env: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=server_env("sqlite:////nonexistent/unused.sqlite3", **env),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_check_deploy_has_no_https_warning_with_the_tls_variables_set():
    assert all(code in check_deploy() for code in HTTPS_WARNINGS)  # the defaults are for plain http
    output = check_deploy(**TLS_ENV)
    assert [code for code in HTTPS_WARNINGS if code in output] == []


@pytest.fixture
def behind_tls_proxy(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000


@pytest.mark.django_db
def test_behind_the_proxy_pages_redirect_to_https_but_probes_stay_plain_http(client, behind_tls_proxy):
    assert client.get("/admin/login/").status_code == 301
    assert client.get("/admin/login/").headers["Location"].startswith("https://")
    assert client.get("/health").status_code == 200  # the load balancer's probe over http
    assert client.get("/health/ready").status_code in (200, 503)
    over_tls = client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"})
    assert over_tls.status_code == 200
    assert "max-age=31536000" in over_tls.headers["Strict-Transport-Security"]


@pytest.mark.django_db
def test_by_default_plain_http_is_served_with_ordinary_cookies(client, settings):
    assert not settings.SECURE_SSL_REDIRECT and settings.SECURE_HSTS_SECONDS == 0
    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert "Strict-Transport-Security" not in page.headers
    assert not page.cookies["csrftoken"]["secure"]
