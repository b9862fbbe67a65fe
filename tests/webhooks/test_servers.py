"""What real servers hand the view: under runserver and gunicorn, a NUL in a kept header is
never a retryable 503, and a chunked body is read whole or refused with 411, never stored empty."""

from __future__ import annotations

import json

import pytest

from tests.webhooks.conftest import TOKENS
from tests.webhooks.servers import inbox_rows, migrated_sqlite, raw_request, running, url_of_test_database, webhook_head

pytestmark = pytest.mark.django_db(transaction=True)


def body(tag: str) -> bytes:
    # One body per test: under SQLite the servers share one database for the module.
    return json.dumps({"item_id": "42", "name": tag}).encode()


SERVERS = ["runserver", "gunicorn"]


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory):
    # Migrated once for the module: a server cannot reach SQLite's in-memory test database.
    return migrated_sqlite(tmp_path_factory.mktemp("servers"))


@pytest.fixture
def database_url(request):
    from django.db import connection

    return url_of_test_database() if connection.vendor == "postgresql" else request.getfixturevalue("sqlite_url")


def new_rows(database_url, before):
    return inbox_rows(database_url)[before:]


@pytest.mark.parametrize("server", SERVERS)
def test_nul_in_a_kept_header_is_never_a_retryable_503(server, database_url, tmp_path):
    before, sent = len(inbox_rows(database_url)), body(f"nul header {server}")
    with running(server, database_url, tmp_path / "server.log") as port:
        head = webhook_head(
            f"/webhooks/products?token={TOKENS[1]}", f"Content-Length: {len(sent)}", "User-Agent: Zoho\x00Books"
        )
        status, _ = raw_request(port, head, sent)
    if server == "gunicorn":
        # gunicorn refuses the header itself (400, before Django), which the sender sees as final.
        assert status in (202, 400)
    else:
        assert status == 202
    if status == 202:
        assert new_rows(database_url, before) == [(sent, "Zoho\\x00Books")]


def _chunked(body: bytes) -> bytes:
    half = len(body) // 2
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:])) + b"0\r\n\r\n"


def test_chunked_body_under_runserver_is_refused_with_411_and_not_stored(database_url, tmp_path):
    before = len(inbox_rows(database_url))
    with running("runserver", database_url, tmp_path / "server.log") as port:
        head = webhook_head(f"/webhooks/products?token={TOKENS[1]}", "Transfer-Encoding: chunked")
        status, answer = raw_request(port, head, _chunked(body("chunked runserver")))
    assert status == 411
    assert json.loads(answer)["error"] == "length_required"
    assert new_rows(database_url, before) == []


def test_chunked_body_under_gunicorn_is_read_whole(database_url, tmp_path):
    before, sent = len(inbox_rows(database_url)), body("chunked gunicorn")
    with running("gunicorn", database_url, tmp_path / "server.log") as port:
        head = webhook_head(f"/webhooks/products?token={TOKENS[1]}", "Transfer-Encoding: chunked")
        status, _ = raw_request(port, head, _chunked(sent))
    assert status == 202
    assert new_rows(database_url, before) == [(sent, "")]
