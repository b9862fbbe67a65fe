"""The accounts token endpoint: expiring access tokens, refresh, revocation, the mint limit."""

from __future__ import annotations

from zohosim import ZohoSimulator

from .conftest import Caller


def test_refresh_answers_a_token_for_the_api_domain(zoho_sim, caller):
    answer = caller.refresh().json()
    assert answer["expires_in"] == 3600 and answer["api_domain"] == zoho_sim.url
    assert answer["token_type"] == "Bearer" and answer["access_token"].startswith("1000.")


def test_api_without_a_token_is_401_code_14(zoho_sim, caller):
    answer = caller.http.get("/books/v3/invoices", params={"organization_id": zoho_sim.organization_id})
    assert answer.status_code == 401
    assert answer.json() == {"code": 14, "message": "Invalid OAuth token."}


def test_token_expires_with_the_clock_until_refreshed(zoho_sim, caller):
    assert caller.get("/books/v3/invoices").status_code == 200
    zoho_sim.advance(3601)
    assert caller.get("/books/v3/invoices").status_code == 401
    caller.refresh()
    assert caller.get("/books/v3/invoices").status_code == 200


def test_expire_tokens_kills_live_tokens_and_a_refresh_fixes_it(zoho_sim, caller):
    caller.refresh()
    zoho_sim.expire_tokens()
    assert caller.get("/books/v3/invoices").json()["code"] == 14
    caller.refresh()
    assert caller.get("/books/v3/invoices").status_code == 200


def test_revoked_grant_fails_calls_and_refreshes(zoho_sim, caller):
    caller.refresh()
    zoho_sim.revoke_tokens()
    assert caller.get("/books/v3/invoices").status_code == 401
    refused = caller.refresh()
    assert (refused.status_code, refused.json()) == (200, {"error": "invalid_code"})
    zoho_sim.restore_tokens()
    assert "access_token" in caller.refresh().json()


def test_wrong_client_secret_is_invalid_client(caller):
    assert caller.refresh(client_secret="nope").json() == {"error": "invalid_client"}


def test_mint_limit_refuses_the_eleventh_token_in_ten_minutes():
    with ZohoSimulator(token_mint_limit=10) as sim:
        caller = Caller(sim)
        answers = [caller.refresh() for _ in range(11)]
        assert [a.status_code for a in answers] == [200] * 10 + [400]
        assert answers[-1].json()["error"] == "Access Denied"
        sim.advance(601)
        assert caller.refresh().status_code == 200
        assert sim.tokens_minted == 11
