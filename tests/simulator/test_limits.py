"""Zoho's limits as the simulator enforces them: per minute (44), per day (45), in flight (1070)."""

from __future__ import annotations

import threading
import time

from zohosim import ZohoSimulator

from .conftest import Caller


def test_per_minute_limit_answers_429_code_44_past_100_calls():
    with ZohoSimulator(per_minute_limit=100, daily_limit=1000) as sim:
        caller = Caller(sim)
        statuses = [caller.get("/inventory/v1/items").status_code for _ in range(100)]
        refused = caller.get("/inventory/v1/items")
        assert statuses == [200] * 100
        assert refused.status_code == 429 and refused.json()["code"] == 44
        assert "x-rate-limit-remaining" in refused.headers


def test_per_minute_window_reopens_a_minute_later():
    with ZohoSimulator(per_minute_limit=3) as sim:
        caller = Caller(sim)
        assert [caller.get("/books/v3/users").status_code for _ in range(4)] == [200, 200, 200, 429]
        sim.advance(61)
        assert caller.get("/books/v3/users").status_code == 200


def test_daily_cap_answers_429_code_45_until_the_org_midnight():
    with ZohoSimulator(daily_limit=3) as sim:
        caller = Caller(sim)
        answers = [caller.get("/books/v3/contacts") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].json() == {
            "code": 45,
            "message": "The API call for this organization has exceeded the maximum call rate limit of 3.",
        }
        assert [a.headers["x-rate-limit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert answers[0].headers["x-rate-limit-limit"] == "3"
        sim.advance(int(answers[-1].headers["x-rate-limit-reset"]) + 1)
        caller.refresh()  # the day's wait outlived the token
        assert caller.get("/books/v3/contacts").status_code == 200


def test_refused_calls_are_not_counted():
    with ZohoSimulator(per_minute_limit=2, daily_limit=10) as sim:
        caller = Caller(sim)
        for _ in range(5):
            caller.get("/books/v3/users")
        sim.advance(61)
        assert caller.get("/books/v3/users").headers["x-rate-limit-remaining"] == str(10 - 3)


def test_concurrency_limit_answers_429_code_1070():
    with ZohoSimulator(concurrency_limit=2) as sim:
        sim.seed("users", 1)
        Caller(sim).refresh()
        sim.slow_next(0.6, count=2)
        slow = []

        def call():
            slow.append(Caller(sim).get("/books/v3/users").status_code)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while sim.in_flight < 2 and time.monotonic() < deadline:  # both slow calls hold their slot
            time.sleep(0.01)
        refused = Caller(sim).get("/books/v3/users")
        for thread in threads:
            thread.join()
        assert refused.status_code == 429 and refused.json()["code"] == 1070
        assert slow == [200, 200]
        assert Caller(sim).get("/books/v3/users").status_code == 200


def test_no_rate_limit_headers_without_an_enforced_daily_cap(zoho_sim, caller):
    # TDS Core believes Zoho's numbers over its plan's: an unlimited simulator has none to send.
    answer = caller.get("/books/v3/invoices")
    assert answer.status_code == 200
    assert "x-rate-limit-limit" not in answer.headers and "x-rate-limit-remaining" not in answer.headers
