"""The Zoho client against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from sync.config_keys import ZOHO_CALL_RETRIES
from sync.zoho import breaker, limiter
from sync.zoho.client import ZohoClient, ZohoError
from sync.zoho.config_keys import ZOHO_AUTH_RETRY_SECONDS, ZOHO_BREAKER_COOLDOWN_SECONDS
from sync.zoho.models import ZohoToken
from tdscore import config
from tests.conftest import point_at
from zohosim import ZohoSimulator

pytestmark = pytest.mark.django_db
TOKEN_PATH = "/oauth/v2/token"


def token_requests(sim) -> int:
    return sum(1 for r in sim.requests if r.path == TOKEN_PATH)


def all_pages(client, slug: str, *, first: int = 1) -> list:
    pages, number = [], first
    while True:
        pages.append(client.list_page(slug, number))
        if not pages[-1].has_more:
            return pages
        number += 1


@pytest.fixture
def limited_sim(settings) -> Iterator[ZohoSimulator]:
    """A simulator enforcing Zoho's per-minute limit of 100 calls."""
    with ZohoSimulator(per_minute_limit=100) as sim:
        point_at(settings, sim)
        yield sim


@pytest.fixture
def clock():
    """A clock that runs, and that the client's waits move forward instead of sleeping.

    time-machine moves datetime.now in every thread, so the simulator's clock moves with ours.
    """
    with time_machine.travel(timezone.now(), tick=True) as traveller:
        yield traveller


@pytest.fixture
def client(zoho_sim, clock):
    with ZohoClient(sleep=clock.shift) as zoho:
        yield zoho


def test_every_call_carries_the_token_header_and_organization(zoho_sim, client):
    item = zoho_sim.seed("products", 1)[0]
    assert client.get("products", item["item_id"])["item_id"] == item["item_id"]
    call = zoho_sim.api_calls()[-1]
    assert call.path == f"/inventory/v1/items/{item['item_id']}"
    assert call.params["organization_id"] == zoho_sim.organization_id


def test_list_pages_follow_has_more_page(zoho_sim, client):
    zoho_sim.seed("products", 450)
    pages = all_pages(client, "products")
    assert [(p.page, p.has_more, len(p.rows)) for p in pages] == [(1, True, 200), (2, True, 200), (3, False, 50)]
    ids = {row["item_id"] for p in pages for row in p.rows}
    assert ids == {obj["item_id"] for obj in zoho_sim.all("products")}


def test_contacts_are_listed_by_contact_type(zoho_sim, client):
    zoho_sim.seed("customers", 3)
    zoho_sim.seed("vendors", 2)
    page = client.list_page("vendors")
    assert len(page.rows) == 2 and {row["contact_type"] for row in page.rows} == {"vendor"}


def test_modified_since_filters_where_zoho_has_the_filter(zoho_sim, client, clock):
    old = zoho_sim.seed("invoices", 3)
    clock.shift(3600)
    changed = zoho_sim.update("invoices", old[0]["invoice_id"], reference_number="changed")
    page = client.list_page("invoices", modified_since=timezone.now() - timedelta(minutes=5))
    assert [row["invoice_id"] for row in page.rows] == [changed["invoice_id"]]


def test_the_token_is_cached_and_shared_by_clients(zoho_sim, clock):
    item = zoho_sim.seed("products", 1)[0]
    with ZohoClient(sleep=clock.shift) as first, ZohoClient(sleep=clock.shift) as second:
        first.get("products", item["item_id"])
        second.get("products", item["item_id"])
        second.list_page("products")
    assert token_requests(zoho_sim) == 1
    assert ZohoToken.objects.get().refresh_count == 1


def test_the_api_domain_from_the_token_answer_is_used(zoho_sim, settings, clock):
    settings.ZOHO_API_BASE = ""  # only the accounts host is known; the API host comes from the token
    item = zoho_sim.seed("products", 1)[0]
    with ZohoClient(sleep=clock.shift) as zoho:
        assert zoho.get("products", item["item_id"])["item_id"] == item["item_id"]
    assert ZohoToken.objects.get().api_domain == zoho_sim.url


def test_a_token_expiring_mid_run_is_refreshed_once(zoho_sim, client):
    zoho_sim.seed("products", 450)
    client.list_page("products", 1)
    zoho_sim.advance(3700)  # Zoho's clock passes the token's hour; ours still thinks it is fresh
    rest = all_pages(client, "products", first=2)
    assert [p.page for p in rest] == [2, 3]
    assert token_requests(zoho_sim) == 2
    assert breaker.state(timezone.now()) == "closed"


def test_a_revoked_token_puts_the_breaker_in_auth_and_callers_are_refused_quickly(zoho_sim, client):
    item = zoho_sim.seed("products", 1)[0]
    client.get("products", item["item_id"])
    zoho_sim.revoke_tokens()
    with pytest.raises(ZohoError) as first:
        client.get("products", item["item_id"])
    assert (first.value.kind, first.value.permanent) == ("auth", False)
    assert breaker.state(timezone.now()) == "auth"
    seen = len(zoho_sim.requests)
    with pytest.raises(ZohoError) as second:
        client.list_page("products")
    assert second.value.kind == "auth"
    assert len(zoho_sim.requests) == seen  # refused without calling Zoho or its token endpoint


def test_auth_state_heals_after_the_grant_is_restored(zoho_sim, client, clock):
    config.update(ZOHO_AUTH_RETRY_SECONDS, 10)
    item = zoho_sim.seed("products", 1)[0]
    zoho_sim.revoke_tokens()
    with pytest.raises(ZohoError):
        client.get("products", item["item_id"])
    zoho_sim.restore_tokens()
    clock.shift(11)
    assert client.get("products", item["item_id"])["item_id"] == item["item_id"]
    assert breaker.state(timezone.now()) == "closed"


def test_a_401_with_code_57_refreshes_once_and_the_fresh_token_carries_on(zoho_sim, client):
    # What a token Zoho invalidated early gets: not a missing scope until a fresh token is refused too.
    item = zoho_sim.seed("products", 1)[0]
    client.get("products", item["item_id"])
    zoho_sim.fail_next(401, code=57)
    assert client.get("products", item["item_id"])["item_id"] == item["item_id"]
    assert token_requests(zoho_sim) == 2
    assert breaker.state(timezone.now()) == "closed"


def test_a_401_with_code_57_for_the_fresh_token_too_enters_the_auth_state(zoho_sim, client):
    item = zoho_sim.seed("products", 1)[0]
    client.get("products", item["item_id"])
    zoho_sim.fail_next(401, count=2, code=57)
    with pytest.raises(ZohoError) as caught:
        client.get("products", item["item_id"])
    assert caught.value.kind == "auth"
    assert token_requests(zoho_sim) == 2
    assert breaker.state(timezone.now()) == "auth"


def test_code_57_on_an_accepted_token_is_a_missing_scope_without_refresh(zoho_sim, client):
    item = zoho_sim.seed("products", 1)[0]
    client.get("products", item["item_id"])
    zoho_sim.fail_next(403, code=57)
    with pytest.raises(ZohoError) as caught:
        client.get("products", item["item_id"])
    assert caught.value.kind == "scope"
    assert token_requests(zoho_sim) == 1


def test_a_missing_object_is_a_permanent_not_found(zoho_sim, client):
    with pytest.raises(ZohoError) as caught:
        client.get("invoices", "404404")
    assert (caught.value.kind, caught.value.permanent, caught.value.status, caught.value.code) == (
        "not_found",
        True,
        404,
        1002,
    )


@pytest.mark.parametrize(("status", "code", "kind"), [(429, 45, "daily_limit"), (500, 1000, "server")])
def test_zoho_errors_over_http_keep_their_kind(zoho_sim, client, status, code, kind):
    config.update(ZOHO_CALL_RETRIES, 0)
    zoho_sim.fail_next(status, code=code)
    with pytest.raises(ZohoError) as caught:
        client.list_page("products")
    assert (caught.value.kind, caught.value.permanent, caught.value.code) == (kind, False, code)


def test_a_dropped_connection_is_one_network_error_left_to_the_callers_retry(zoho_sim, client):
    zoho_sim.seed("products", 2)
    zoho_sim.drop_next()
    with pytest.raises(ZohoError) as caught:
        client.list_page("products")
    assert caught.value.kind == "network" and len(zoho_sim.api_calls()) == 1
    assert len(client.list_page("products").rows) == 2


def test_a_slow_answer_times_out_as_a_network_error(zoho_sim, clock):
    config.update(ZOHO_CALL_RETRIES, 0)
    zoho_sim.slow_next(2)
    with ZohoClient(timeout=0.3, sleep=clock.shift) as zoho, pytest.raises(ZohoError) as caught:
        zoho.list_page("products")
    assert (caught.value.kind, caught.value.permanent) == ("network", False)


def test_repeated_5xx_open_the_breaker_and_it_recovers_through_a_probe(zoho_sim, client, clock):
    config.update(ZOHO_BREAKER_COOLDOWN_SECONDS, 5)
    zoho_sim.seed("products", 1)
    zoho_sim.fail_next(500, count=5)
    for _ in range(5):  # five in a row open it
        with pytest.raises(ZohoError) as failed:
            client.list_page("products")
        assert failed.value.kind == "server"
    with pytest.raises(ZohoError) as second:
        client.list_page("products")  # refused without a call
    assert second.value.kind == "breaker_open"
    assert len(zoho_sim.api_calls()) == 5
    assert breaker.state(timezone.now()) == "open"
    clock.shift(5)
    assert breaker.state(timezone.now()) == "half_open"
    assert len(client.list_page("products").rows) == 1  # the probe
    assert breaker.state(timezone.now()) == "closed"


def test_after_a_429_every_call_waits_as_zoho_asked_and_stays_within_the_minute_limit(limited_sim, clock):
    item = limited_sim.seed("products", 1)[0]
    limited_sim.fail_next(429, count=1, code=44)
    started = timezone.now()
    with ZohoClient(sleep=clock.shift) as zoho:
        with pytest.raises(ZohoError) as caught:
            zoho.get("products", item["item_id"])
        assert caught.value.kind == "rate_limit"
        for _ in range(150):
            zoho.get("products", item["item_id"])
    calls = [r.at for r in limited_sim.api_calls()]
    assert len(calls) == 151
    assert timezone.now() - started >= timedelta(seconds=60)  # it waited as Zoho asked
    busiest = max(sum(1 for t in calls if start <= t < start + timedelta(seconds=60)) for start in calls)
    assert busiest <= 100


def test_zoho_remaining_header_makes_the_limiter_refuse_before_zoho_does(settings, clock):
    with ZohoSimulator(daily_limit=5) as sim:
        point_at(settings, sim)
        sim.seed("products", 1)
        with ZohoClient(sleep=clock.shift) as zoho:
            for _ in range(5):
                zoho.list_page("products")
            with pytest.raises(ZohoError) as caught:
                zoho.list_page("products")
        assert caught.value.kind == "budget"
        assert len(sim.api_calls()) == 5  # refused here, no 429 from Zoho
    assert limiter.usage(timezone.now()).remaining_today == 0


def test_usage_counts_the_calls_made(zoho_sim, client, settings):
    settings.ZOHO_PLAN = "professional"
    zoho_sim.seed("products", 450)
    all_pages(client, "products")
    usage = limiter.usage(timezone.now())
    assert (usage.calls_today, usage.minute_used, usage.daily_cap) == (3, 3, 5000)
    assert usage.remaining_minute == 97
    assert usage.remaining_today == 5000 - 3


def test_the_canadian_data_centre_uses_zohocloud_accounts(settings):
    settings.ZOHO_DC, settings.ZOHO_API_BASE, settings.ZOHO_ACCOUNTS_BASE = "ca", "", ""
    with ZohoClient() as zoho:
        assert zoho.accounts_base == "https://accounts.zohocloud.ca"


def test_after_a_concurrency_429_the_next_call_waits_a_short_pause(zoho_sim, client):
    zoho_sim.seed("products", 1)
    zoho_sim.fail_next(429, code=1070)
    started = timezone.now()
    with pytest.raises(ZohoError) as caught:
        client.list_page("products")
    assert caught.value.kind == "concurrency"
    assert len(client.list_page("products").rows) == 1
    assert len(zoho_sim.api_calls()) == 2
    assert timezone.now() - started >= timedelta(seconds=limiter.CONCURRENCY_PAUSE_SECONDS)


def test_after_zohos_daily_429_calls_are_refused_here_until_its_day_resets(zoho_sim, client, clock):
    zoho_sim.fail_next(429, code=45)
    with pytest.raises(ZohoError):
        client.list_page("products")
    with pytest.raises(ZohoError) as caught:
        client.list_page("products")
    assert caught.value.kind == "daily_limit"
    assert len(zoho_sim.api_calls()) == 1
    clock.shift(caught.value.retry_after + 1)  # Zoho's x-rate-limit-reset: its midnight
    assert client.list_page("products").has_more is False


def test_a_client_refused_an_old_token_takes_the_one_another_client_refreshed(zoho_sim, clock):
    item = zoho_sim.seed("products", 1)[0]
    with ZohoClient(sleep=clock.shift) as first, ZohoClient(sleep=clock.shift) as second:
        first.get("products", item["item_id"])
        second.get("products", item["item_id"])
        zoho_sim.expire_tokens()  # Zoho ends the token early: both clients still hold it
        first.get("products", item["item_id"])  # 401, refresh, retry
        second.get("products", item["item_id"])  # 401, finds the new token in the shared row
    assert zoho_sim.tokens_minted == 2


@pytest.mark.parametrize(
    ("dc", "api", "accounts"),
    [
        ("uk", "https://www.zohoapis.uk", "https://accounts.zoho.uk"),
        ("ae", "https://www.zohoapis.ae", "https://accounts.zoho.ae"),
    ],
)
def test_the_uk_and_uae_data_centres_have_their_own_hosts(settings, dc, api, accounts):
    settings.ZOHO_DC, settings.ZOHO_API_BASE, settings.ZOHO_ACCOUNTS_BASE = dc, "", ""
    with ZohoClient() as zoho:
        assert (zoho._default_api, zoho.accounts_base) == (api, accounts)


@pytest.mark.parametrize("dc", ["uk", "ae", "us", ""])
def test_a_host_override_works_whatever_zoho_dc_says(zoho_sim, settings, clock, dc):
    settings.ZOHO_DC = dc  # "us" and "" are no data centre: the overrides mean it is never read
    item = zoho_sim.seed("products", 1)[0]
    with ZohoClient(sleep=clock.shift) as zoho:
        assert zoho.get("products", item["item_id"])["item_id"] == item["item_id"]
    assert zoho_sim.api_calls()[-1].path == f"/inventory/v1/items/{item['item_id']}"


@pytest.mark.parametrize(("plan", "cap"), [("elite", 10_000), ("ultimate", 10_000), ("standard", 2000)])
def test_every_plan_sets_its_daily_cap(settings, plan, cap):
    settings.ZOHO_PLAN = plan
    assert limiter.usage(timezone.now()).daily_cap == cap


def test_zoho_daily_cap_is_a_cap_zoho_raised_on_request(zoho_sim, client, settings):
    settings.ZOHO_PLAN, settings.ZOHO_DAILY_CAP = "ultimate", 25_000
    zoho_sim.seed("products", 1)
    client.list_page("products")
    usage = limiter.usage(timezone.now())
    assert (usage.daily_cap, usage.remaining_today) == (25_000, 24_999)


def test_zohos_own_rate_limit_headers_win_over_the_plan(settings, clock):
    settings.ZOHO_PLAN = "free"  # we believe 1,000; this organisation's Zoho says 3,000
    with ZohoSimulator(daily_limit=3000) as sim:
        point_at(settings, sim)
        sim.seed("products", 1)
        with ZohoClient(sleep=clock.shift) as zoho:
            zoho.list_page("products")
            zoho.list_page("products")
    usage = limiter.usage(timezone.now())
    assert (usage.daily_cap, usage.remaining_today) == (3000, 2998)


def test_item_details_come_in_bulk_up_to_a_hundred_a_call(zoho_sim, client):
    items = zoho_sim.seed("products", 120)
    ids = [i["item_id"] for i in items[:100]]
    details = client.item_details(ids)
    assert [d["item_id"] for d in details] == ids and all("locations" in d for d in details)
    call = zoho_sim.api_calls()[-1]
    assert (call.path, call.params["item_ids"]) == ("/inventory/v1/itemdetails", ",".join(ids))
    with pytest.raises(ValueError):
        client.item_details([i["item_id"] for i in items])
