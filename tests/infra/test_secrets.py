"""No secret reaches an output: every secret the deployment holds is set to a marker of its own, the
processes an operator runs are driven through the paths that touch each one (webhooks with good and
bad credentials, error bodies, a Zoho pull whose token refresh is refused, alert deliveries that
fail, the admin's pages, the commands), and every output is searched for every marker.

The outputs: gunicorn's log (the project's logging config, request lines included), every answer
body of the webhook, the API and the admin, and the output of `tds_status --json`, `tds_status`,
`check --deploy`, `sync_zoho`, `check_alerts` and `send_test_alert`. Everything runs as separate
processes on a migrated SQLite file of the test's own, so it is the same on either database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import subprocess
import sys
from urllib.parse import urljoin

import httpx
import pytest

from tests.alerts.conftest import RecordingServer
from tests.infra.conftest import ROOT, free_port, server_env

# Letters and digits only: a marker looks the same URL-encoded, JSON-escaped or in HTML.
WEBHOOK_TOKEN = "mkWebhookToken91c2"
HMAC_KEY = "mkHmacKey4b7e05"
ZOHO_WEBHOOK_SECRET = "mkZohoHookSecret3d1a"
STANDARD_KEY = "mkStandardKey77f0aa"
CLIENT_SECRET = "mkClientSecret8e2f"
REFRESH_TOKEN = "mkRefreshToken5a9c"
SMTP_PASSWORD = "mkSmtpPassword2c4d"
SLACK_PATH = "mkSlackPath6f1b"
TELEGRAM_TOKEN = "mkTelegramToken0e7d"
ALERT_HOOK_KEY = "mkAlertHookKey11aa"
ALERT_HOOK_SECRET = "mkAlertHookSecret5b"
ENCRYPTION_KEY = "mkEncryptionKey93e1"
SECRET_KEY = "mkSecretKey" + "Qw8zR2xN5vL0pK7jH4gF1dS9aT6yU3iO" + "xbx4Zc7Vm2Np"

MARKERS = {
    "TDS_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    "TDS_WEBHOOK_SECRET": HMAC_KEY,
    "TDS_ZOHO_WEBHOOK_SECRET": ZOHO_WEBHOOK_SECRET,
    "TDS_STANDARD_WEBHOOK_SECRET": STANDARD_KEY,  # and its base64 form, as the variable holds it
    "ZOHO_CLIENT_SECRET": CLIENT_SECRET,
    "ZOHO_REFRESH_TOKEN": REFRESH_TOKEN,
    "EMAIL_URL password": SMTP_PASSWORD,
    "SLACK_WEBHOOK_URL": SLACK_PATH,
    "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
    "ALERT_WEBHOOK_URL key": ALERT_HOOK_KEY,
    "ALERT_WEBHOOK_SECRET": ALERT_HOOK_SECRET,
    "TDS_ENCRYPTION_KEY": ENCRYPTION_KEY,
    "SECRET_KEY": SECRET_KEY,
}
STANDARD_SECRET = "whsec_" + base64.b64encode(STANDARD_KEY.encode()).decode()
ALERT_SECRET = "whsec_" + base64.b64encode(ALERT_HOOK_SECRET.encode()).decode()
SEARCHED = {**MARKERS, "TDS_STANDARD_WEBHOOK_SECRET (base64)": STANDARD_SECRET.removeprefix("whsec_")}
SEARCHED["ALERT_WEBHOOK_SECRET (base64)"] = ALERT_SECRET.removeprefix("whsec_")

# What `check --deploy` needs of a production deployment behind the TLS proxy (docs/OPERATIONS.md).
PRODUCTION = {
    "DEBUG": "False",
    "ALLOWED_HOSTS": "127.0.0.1,tds.example.com",
    "TDS_SECURE_SSL_REDIRECT": "true",
    "TDS_SECURE_COOKIES": "true",
    "TDS_PROXY_SSL_HEADER": "true",
    "TDS_HSTS_SECONDS": "31536000",
    "TDS_HSTS_INCLUDE_SUBDOMAINS": "true",
    "TDS_HSTS_PRELOAD": "true",
}
ADMIN_PASSWORD = "an-ordinary-password-3e1"  # not a deployment secret: the test's own login
PAGE_LIMIT = 200


def secrets_env(database_url: str, recorder: RecordingServer, smtp_port: int) -> dict[str, str]:
    env = server_env(database_url, **PRODUCTION)
    env.update(
        {
            "SECRET_KEY": SECRET_KEY,
            "TDS_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "TDS_WEBHOOK_SECRET": HMAC_KEY,
            "TDS_ZOHO_WEBHOOK_SECRET": ZOHO_WEBHOOK_SECRET,
            "TDS_STANDARD_WEBHOOK_SECRET": STANDARD_SECRET,
            "TDS_ENCRYPTION_KEY": ENCRYPTION_KEY,
            # Zoho's accounts host is the recorder, which refuses the refresh: an auth failure.
            "ZOHO_CLIENT_ID": "1000.client",
            "ZOHO_CLIENT_SECRET": CLIENT_SECRET,
            "ZOHO_REFRESH_TOKEN": REFRESH_TOKEN,
            "ZOHO_ORGANIZATION_ID": "60012345",
            "ZOHO_ACCOUNTS_BASE": recorder.url,
            "ZOHO_API_BASE": recorder.url,
            # Nothing listens there: every e-mail fails to connect.
            "EMAIL_URL": f"smtp://tds:{SMTP_PASSWORD}@127.0.0.1:{smtp_port}",
            "ALERT_EMAIL_TO": "ops@example.com",
            "SLACK_WEBHOOK_URL": f"{recorder.url}/services/T0/B0/{SLACK_PATH}",
            "TELEGRAM_API_BASE": recorder.url,
            "TELEGRAM_BOT_TOKEN": f"123456:{TELEGRAM_TOKEN}",
            "TELEGRAM_CHAT_ID": "42",
            "ALERT_WEBHOOK_URL": f"{recorder.url}/hook?key={ALERT_HOOK_KEY}",
            "ALERT_WEBHOOK_SECRET": ALERT_SECRET,
            "DJANGO_SUPERUSER_USERNAME": "admin",
            "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
            "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
        }
    )
    return env


def manage(env: dict[str, str], *args: str, ok: bool = True) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout + done.stderr


def found(outputs: dict[str, str]) -> list[str]:
    return [
        f"{variable} in {where}"
        for where, text in outputs.items()
        for variable, marker in SEARCHED.items()
        if marker in text
    ]


def send_webhooks(client: httpx.Client, outputs: dict[str, str]) -> None:
    item = b'{"item_id": "5001", "name": "Secret widget"}'
    signature = hmac.new(HMAC_KEY.encode(), item, hashlib.sha256).hexdigest()
    wrong = "mkNotTheTokenButSecret"
    attempts = {
        "token header": ("POST", "/webhooks/products", {"X-TDS-Token": WEBHOOK_TOKEN}, item),
        "token query": ("POST", f"/webhooks/products?token={WEBHOOK_TOKEN}", {}, item),
        "hmac": ("POST", "/webhooks/products", {"X-TDS-Signature": f"sha256={signature}"}, item),
        "wrong token": ("POST", f"/webhooks/products?token={wrong}", {"X-TDS-Token": wrong}, item),
        "unknown entity": ("POST", "/webhooks/nothing", {"X-TDS-Token": WEBHOOK_TOKEN}, item),
        "not json": ("POST", "/webhooks/products", {"X-TDS-Token": WEBHOOK_TOKEN}, b"{not json"),
        "xml": ("POST", "/webhooks/products", {"X-TDS-Token": WEBHOOK_TOKEN, "Content-Type": "application/xml"}, item),
        "get": ("GET", f"/webhooks/products?token={WEBHOOK_TOKEN}", {}, b""),
    }
    for name, (method, path, headers, body) in attempts.items():
        headers = {"Content-Type": "application/json", **headers}
        response = client.request(method, path, headers=headers, content=body)
        assert response.status_code < 500, (name, response.status_code, response.text)
        outputs[f"webhook answer ({name}, {response.status_code})"] = response.text + str(response.headers)
        assert wrong not in response.text
    assert outputs["webhook answer (hmac, 200)"], "the signed delivery was not accepted"


def read_api(client: httpx.Client, outputs: dict[str, str]) -> None:
    for path in ("/api/dashboard/runs", "/api/dashboard/alerts", "/api/dashboard/nothing"):
        for headers in ({}, {"Authorization": f"Token {WEBHOOK_TOKEN}"}, {"Authorization": "Bearer x"}):
            response = client.get(path, headers=headers)
            assert response.status_code < 500, (path, response.status_code)
            outputs[f"API answer ({path}, {headers}, {response.status_code}, {len(outputs)})"] = response.text


def log_in(client: httpx.Client) -> None:
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"Referer": str(client.base_url) + "/admin/login/"},
    )
    assert response.status_code == 302, response.text[:500]


LINK = re.compile(r'href="(/(?:admin|dashboard)/[^"#?]*)"')


def crawl(client: httpx.Client, outputs: dict[str, str]) -> int:
    """Every admin and dashboard page linked from the index pages, each changelist's first objects,
    and the add forms: the pages an operator opens."""
    seen: set[str] = set()
    todo = ["/admin/", "/dashboard/", "/"]
    while todo and len(seen) < PAGE_LIMIT:
        path = todo.pop(0)
        if path in seen or "/logout" in path or "/delete/" in path or "/password/" in path:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code < 500, (path, response.status_code, response.text[:500])
        outputs[f"page {path} ({response.status_code})"] = response.text
        if response.status_code == 200 and path.count("/") <= 4:
            todo += [urljoin(path, link) for link in LINK.findall(response.text)]
    return len(seen)


@pytest.fixture
def recorder():
    with RecordingServer() as server:
        # Every channel's receiver and Zoho's accounts host fail: the errors are what is searched.
        server.answer(f"/services/T0/B0/{SLACK_PATH}", 500)
        server.answer("/hook", 500)
        server.answer(f"/bot123456:{TELEGRAM_TOKEN}/sendMessage", 401)
        server.answer("/oauth/v2/token", 400)
        yield server


def test_no_secret_reaches_a_log_an_answer_a_page_or_a_command(tmp_path, recorder, start_server):
    env = secrets_env(f"sqlite:///{tmp_path / 'db.sqlite3'}", recorder, free_port())
    outputs: dict[str, str] = {}
    outputs["migrate"] = manage(env, "migrate", "-v0")
    outputs["createsuperuser"] = manage(env, "createsuperuser", "--noinput")
    outputs["sync_zoho"] = manage(env, "sync_zoho", "--entity", "products", ok=False)
    outputs["check_alerts"] = manage(env, "check_alerts", ok=False)
    outputs["send_test_alert"] = manage(env, "send_test_alert", ok=False)
    outputs["tds_status --json"] = manage(env, "tds_status", "--json", ok=False)
    outputs["tds_status"] = manage(env, "tds_status", ok=False)
    deploy = manage(env, "check", "--deploy")
    outputs["check --deploy"] = deploy

    # The test speaks plain http to gunicorn, not through the TLS proxy.
    server = start_server("gunicorn", {**env, "TDS_SECURE_SSL_REDIRECT": "false", "TDS_SECURE_COOKIES": "false"})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        send_webhooks(client, outputs)
        read_api(client, outputs)
        log_in(client)
        pages = crawl(client, outputs)
        read_api(client, outputs)  # as the operator logged in
    server.stop()
    outputs["gunicorn log"] = server.output()

    # What the paths above were to touch, so a quiet output is not an untested one.
    assert recorder.to("/oauth/v2/token"), "no token refresh was tried"
    assert any(f"/bot123456:{TELEGRAM_TOKEN}/" in r.path for r in recorder.requests), "no Telegram delivery was tried"
    assert recorder.to(f"/services/T0/B0/{SLACK_PATH}") and recorder.to("/hook"), "no Slack or webhook delivery"
    assert pages >= 40, f"only {pages} pages crawled"
    assert "token=[redacted]" in outputs["gunicorn log"]

    leaks = found(outputs)
    assert leaks == [], f"{len(leaks)} leaks over {len(outputs)} outputs ({pages} pages): " + "; ".join(leaks)
    assert "System check identified no issues" in deploy, deploy
