"""With the database down every path answers 503, never 500: JSON under /api/ and for
webhooks, a short page for people. The servers run for real, their DATABASE_URL pointing at a port
nothing listens on; a session cookie and an API token make the pages ask the database who is asking.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.infra.conftest import TOKEN, closed_port_database_url, server_env

JSON_BODY = {"status": "error", "error": "database_unavailable"}
# A pooled connection is waited for this long before the request gives up (short for the test).
ENV = {"TDS_DB_POOL_TIMEOUT": "1"}
RECOVERY_SECONDS = 60  # psycopg_pool retries a failed connection with a growing backoff


@pytest.fixture(
    params=[
        # gunicorn starts whatever the database does: down from the first request.
        "gunicorn, down from the start",
        # runserver checks migrations before it serves, so its database goes away once it runs.
        # It shares the migrated test database.
        pytest.param(
            "runserver, down while serving", marks=[pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
        ),
    ]
)
def server_without_database(request, start_server):
    kind, _, when = request.param.partition(", ")
    if when == "down from the start":
        return start_server(kind, server_env(closed_port_database_url(), **ENV))
    link, url = request.getfixturevalue("database_link")
    server = start_server(kind, server_env(url, **ENV))
    assert httpx.get(server.url + "/health", timeout=30).status_code == 200
    link.down()
    server.link = link
    return server


def test_pages_for_people_answer_a_short_503_page(server_without_database):
    with httpx.Client(base_url=server_without_database.url, timeout=30, cookies={"sessionid": "x" * 32}) as client:
        for path in ("/admin/", "/admin/login/", "/admin/sync/queueitem/", "/api/docs/"):
            response = client.get(path)
            assert response.status_code == 503, (path, response.status_code, response.text[:300])
            assert response.headers["content-type"].startswith("text/html"), path
            assert "Service unavailable" in response.text
            assert response.headers["retry-after"] == "30"
    with httpx.Client(base_url=server_without_database.url, timeout=30) as anonymous:
        assert anonymous.get("/admin/").status_code == 302  # to the login page, which needs no database
        assert anonymous.get("/admin/login/").status_code == 200


def test_the_api_answers_the_json_error_body(server_without_database):
    with httpx.Client(base_url=server_without_database.url, timeout=30) as client:
        for path, headers in [
            ("/api/dashboard/runs", {"Authorization": "Token 0123456789abcdef"}),
            ("/api/dashboard/cursors", {"Cookie": "sessionid=" + "x" * 32}),
            ("/api/schema/", {"Cookie": "sessionid=" + "x" * 32}),
        ]:
            response = client.get(path, headers=headers)
            assert response.status_code == 503, (path, response.status_code, response.text[:300])
            body = response.json()
            assert {key: body[key] for key in JSON_BODY} == JSON_BODY, path
            assert "127.0.0.1" not in body["detail"] and "connection" not in body["detail"].lower()


def test_health_and_webhooks_answer_503_and_recover_with_the_database(server_without_database):
    item = {"item_id": "1", "name": "x"}
    with httpx.Client(base_url=server_without_database.url, timeout=30, headers={"X-TDS-Token": TOKEN}) as client:
        assert client.get("/health").status_code == 503
        assert client.get("/health/ready").status_code == 503
        hook = client.post("/webhooks/products", json=item)
        assert hook.status_code == 503
        assert hook.json()["error"] == "database_unavailable"
        link = getattr(server_without_database, "link", None)
        if link is not None:
            # The pool drops the dead sessions and opens new ones, after its reconnect backoff: no
            # restart needed.
            link.up()
            deadline = time.monotonic() + RECOVERY_SECONDS
            while client.get("/health").status_code != 200:
                assert time.monotonic() < deadline, f"/health not 200 within {RECOVERY_SECONDS} s of the database"
                time.sleep(0.5)
            assert client.post("/webhooks/products", json=item).status_code == 202
