"""raise_for_response(): Zoho's recorded error bodies mapped to ZohoError kinds (zoho/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from sync.zoho.client import DATA_CENTRES, hosts
from sync.zoho.errors import ZohoError, raise_for_response

FIXTURES = Path(__file__).parent / "fixtures"


def answer(status: int, body, headers: dict | None = None) -> httpx.Response:
    request = httpx.Request("GET", "https://www.zohoapis.com/books/v3/invoices/1")
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers, request=request)


def sample(name: str) -> dict:
    return json.loads((FIXTURES / f"books-error-{name}.json").read_text())


@pytest.mark.parametrize(
    ("status", "name", "kind", "permanent"),
    [
        (429, "ratelimit-perminute", "rate_limit", False),
        (429, "ratelimit-perminute-webuser", "rate_limit", False),
        (429, "ratelimit-daily", "daily_limit", False),
        (429, "concurrency", "concurrency", False),
        (500, "internal", "server", False),
        (404, "not-found", "not_found", True),
    ],
)
def test_recorded_error_bodies_map_to_their_kind(status, name, kind, permanent):
    body = sample(name)
    with pytest.raises(ZohoError) as caught:
        raise_for_response(answer(status, body))
    assert (caught.value.kind, caught.value.permanent, caught.value.code) == (kind, permanent, body["code"])


def test_an_error_code_under_http_200_is_still_an_error():
    with pytest.raises(ZohoError) as caught:
        raise_for_response(answer(200, sample("not-found")))
    assert caught.value.kind == "not_found" and caught.value.permanent


def test_a_bad_request_is_permanent():
    with pytest.raises(ZohoError) as caught:
        raise_for_response(answer(400, {"code": 2, "message": "Invalid value passed for page"}))
    assert (caught.value.kind, caught.value.permanent) == ("rejected", True)


def test_a_401_is_auth_whatever_its_code_and_code_57_on_an_accepted_token_is_scope():
    not_authorised = {"code": 57, "message": "You are not authorized to perform this operation"}
    with pytest.raises(ZohoError) as expired:
        raise_for_response(answer(401, {"code": 14, "message": "Invalid OAuth token."}))
    with pytest.raises(ZohoError) as invalidated:
        raise_for_response(answer(401, not_authorised))
    with pytest.raises(ZohoError) as scope:
        raise_for_response(answer(403, not_authorised))
    assert (expired.value.kind, expired.value.permanent) == ("auth", False)
    assert (invalidated.value.kind, invalidated.value.permanent) == ("auth", False)
    assert (scope.value.kind, scope.value.permanent) == ("scope", False)


def test_a_gateway_page_instead_of_json_is_a_transient_server_error():
    with pytest.raises(ZohoError) as caught:
        raise_for_response(answer(502, b"<html>Bad Gateway</html>"))
    assert (caught.value.kind, caught.value.permanent) == ("server", False)


def test_retry_after_is_kept_on_a_throttle():
    with pytest.raises(ZohoError) as caught:
        raise_for_response(answer(429, sample("ratelimit-perminute"), {"Retry-After": "17"}))
    assert caught.value.retry_after == 17


def test_success_returns_the_body():
    assert raise_for_response(answer(200, {"code": 0, "message": "success", "item": {"item_id": "1"}}))["item"] == {
        "item_id": "1"
    }


@pytest.mark.parametrize(
    ("dc", "api", "accounts"),
    [
        ("com", "https://www.zohoapis.com", "https://accounts.zoho.com"),
        ("eu", "https://www.zohoapis.eu", "https://accounts.zoho.eu"),
        ("in", "https://www.zohoapis.in", "https://accounts.zoho.in"),
        ("com.au", "https://www.zohoapis.com.au", "https://accounts.zoho.com.au"),
        ("jp", "https://www.zohoapis.jp", "https://accounts.zoho.jp"),
        ("ca", "https://www.zohoapis.ca", "https://accounts.zohocloud.ca"),
        ("sa", "https://www.zohoapis.sa", "https://accounts.zoho.sa"),
        ("com.cn", "https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn"),
        ("uk", "https://www.zohoapis.uk", "https://accounts.zoho.uk"),
        ("ae", "https://www.zohoapis.ae", "https://accounts.zoho.ae"),
    ],
)
def test_data_centre_hosts(dc, api, accounts):
    assert hosts(dc) == (api, accounts)


def test_every_data_centre_is_covered_and_an_unknown_one_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    assert len(DATA_CENTRES) == 10
    with pytest.raises(ImproperlyConfigured):
        hosts("us")


def test_a_zoho_error_survives_pickling_as_task_results_do():
    import pickle

    error = ZohoError("Zoho GET /books/v3/invoices: HTTP 429", kind="rate_limit", status=429, code=44, retry_after=7)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.kind, copy.status, copy.code, copy.retry_after, copy.permanent) == (
        str(error),
        "rate_limit",
        429,
        44,
        7,
        False,
    )
