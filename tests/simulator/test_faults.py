"""Injected faults: error storms, slow answers, dropped connections; each consumes its count."""

from __future__ import annotations

import time

import httpx
import pytest


def test_fail_next_answers_the_status_count_times_then_recovers(zoho_sim, caller):
    zoho_sim.fail_next(503, count=2)
    statuses = [caller.get("/books/v3/invoices").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_429_storm_with_code_44(zoho_sim, caller):
    zoho_sim.fail_next(429, count=5)
    answers = [caller.get("/books/v3/invoices") for _ in range(6)]
    assert [a.json()["code"] for a in answers] == [44] * 5 + [0]


def test_fault_narrowed_by_path(zoho_sim, caller):
    zoho_sim.fail_next(500, path_contains="/invoices")
    assert caller.get("/books/v3/contacts").status_code == 200
    assert caller.get("/books/v3/invoices").status_code == 500
    assert caller.get("/books/v3/invoices").status_code == 200


def test_faults_spare_the_token_endpoint_unless_aimed_at_it(zoho_sim, caller):
    zoho_sim.fail_next(500)
    assert caller.refresh().status_code == 200
    zoho_sim.fail_next(500, path_contains="/oauth/v2/token")
    assert caller.refresh().status_code == 500


def test_injected_401_carries_the_invalid_token_body(zoho_sim, caller):
    zoho_sim.fail_next(401)
    answer = caller.get("/books/v3/items")
    assert answer.status_code == 401 and answer.json()["code"] == 14


def test_dropped_connection_has_no_answer(zoho_sim, caller):
    caller.refresh()
    zoho_sim.drop_next()
    with pytest.raises(httpx.RemoteProtocolError):
        caller.get("/books/v3/invoices")
    assert caller.get("/books/v3/invoices").status_code == 200


def test_slow_answer_trips_a_client_timeout(zoho_sim, caller):
    caller.refresh()
    zoho_sim.slow_next(0.5)
    with pytest.raises(httpx.ReadTimeout):
        caller.http.get(
            "/books/v3/users",
            params={"organization_id": zoho_sim.organization_id},
            headers={"Authorization": f"Zoho-oauthtoken {caller.token}"},
            timeout=0.1,
        )
    started = time.monotonic()
    assert caller.get("/books/v3/users").status_code == 200
    assert time.monotonic() - started < 0.4


def test_slow_answer_still_answers(zoho_sim, caller):
    caller.refresh()
    zoho_sim.slow_next(0.3)
    started = time.monotonic()
    assert caller.get("/books/v3/users").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_requests_are_recorded_with_their_params(zoho_sim, caller):
    caller.get("/books/v3/invoices", page=2)
    token, call = zoho_sim.requests
    assert (token.method, token.path) == ("POST", "/oauth/v2/token")
    assert (call.method, call.path, call.params["page"]) == ("GET", "/books/v3/invoices", "2")
    assert [r.path for r in zoho_sim.api_calls()] == ["/books/v3/invoices"]


def test_unknown_path_answers_invalid_url(caller):
    answer = caller.get("/books/v3/widgets")
    assert answer.status_code == 404 and answer.json() == {"code": 5, "message": "Invalid URL Passed"}


def test_organization_id_is_required(zoho_sim, caller):
    answer = caller.get("/books/v3/invoices", organization_id="")
    assert answer.status_code == 400 and answer.json()["code"] == 6041


def test_a_stopped_simulator_answers_nothing_even_on_a_kept_alive_connection(zoho_sim, caller):
    assert caller.get("/books/v3/invoices").status_code == 200
    zoho_sim.stop()
    with pytest.raises(httpx.TransportError):
        caller.get("/books/v3/invoices")


def test_fault_narrowed_by_query(zoho_sim, caller):
    zoho_sim.seed("products", 5)
    zoho_sim.drop_next(count=10, path_contains="page=2")
    assert caller.get("/inventory/v1/items", page=1, per_page=3).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        caller.get("/inventory/v1/items", page=2, per_page=3)
