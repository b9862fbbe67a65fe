"""The simulator against the recorded Zoho samples (zohosim/samples/): envelopes, errors, headers.

These keep the simulator faithful to Zoho, not merely to our client.
"""

from __future__ import annotations

import json

import pytest

from sync.entities import ENTITIES
from zohosim import ZohoSimulator

from .conftest import SAMPLES, Caller


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


# Books samples are live recordings; their detail objects are the reference for ours.
RECORDED = {
    "books-item.json": "products",
    "books-contact.json": "customers",
    "books-invoice.json": "invoices",
    "books-bill.json": "bills",
    "books-creditnote.json": "credit-notes",
    "books-customerpayment.json": "payments",
}


@pytest.mark.parametrize(("name", "slug"), RECORDED.items())
def test_detail_matches_the_recorded_sample(zoho_sim, caller, name, slug):
    entity = ENTITIES[slug]
    recorded = sample(name)
    obj = zoho_sim.seed(slug, 1)[0]
    prefix = "/books/v3" if entity.api == "books" else "/inventory/v1"
    answer = caller.get(f"{prefix}/{entity.path}/{obj[entity.id_field]}").json()
    assert answer.keys() == recorded.keys()
    assert (answer["code"], answer["message"]) == (recorded["code"], recorded["message"])
    ours, theirs = answer[entity.single_key], recorded[entity.single_key]
    assert theirs.keys() <= ours.keys()
    mismatched = {
        key: (kind(theirs[key]), kind(ours[key]))
        for key in theirs
        if "" not in (theirs[key], ours[key]) and kind(theirs[key]) != kind(ours[key])
    }
    assert mismatched == {}
    assert isinstance(ours[entity.id_field], str) and ours[entity.id_field].isdigit()


@pytest.mark.parametrize(
    ("name", "slug"),
    [("inventory-item.json", "products"), ("inventory-inventoryadjustment.json", "stock")],
)
def test_inventory_detail_has_every_documented_field(zoho_sim, caller, name, slug):
    entity = ENTITIES[slug]
    documented = sample(name)[entity.single_key]
    obj = zoho_sim.seed(slug, 1)[0]
    ours = caller.get(f"/inventory/v1/{entity.path}/{obj[entity.id_field]}").json()[entity.single_key]
    assert documented.keys() <= ours.keys()
    for block in ("locations", "line_items"):
        if block in documented:
            assert documented[block][0].keys() <= ours[block][0].keys()


def test_sales_order_has_every_documented_field(zoho_sim, caller):
    documented = sample("inventory-salesorder.json")
    obj = zoho_sim.seed("sales-orders", 1)[0]
    ours = caller.get(f"/books/v3/salesorders/{obj['salesorder_id']}").json()["salesorder"]
    assert documented.keys() <= ours.keys()
    assert documented["line_items"][0].keys() <= ours["line_items"][0].keys()


def test_list_envelope_follows_zoho_pagination(zoho_sim, caller):
    zoho_sim.seed("invoices", 3)
    answer = caller.get("/books/v3/invoices", per_page=2).json()
    assert {"code", "message", "invoices", "page_context"} == answer.keys()
    assert (answer["code"], answer["message"]) == (0, "success")
    context = answer["page_context"]
    expected = {
        "page": "number",
        "per_page": "number",
        "has_more_page": "bool",
        "sort_column": "str",
        "sort_order": "str",
    }
    assert {k: kind(context[k]) for k in expected} == expected
    assert (context["page"], context["per_page"], context["has_more_page"]) == (1, 2, True)
    assert context["sort_order"] in ("A", "D")


def test_not_found_body_equals_the_sample(caller):
    answer = caller.get("/books/v3/invoices/460000000000001")
    assert answer.status_code == 404
    assert answer.json() == sample("books-error-not-found.json")


def test_delete_answer_equals_the_sample(zoho_sim, caller):
    item = zoho_sim.seed("products", 1)[0]
    caller.refresh()
    answer = caller.http.delete(
        f"/books/v3/items/{item['item_id']}",
        params={"organization_id": zoho_sim.organization_id},
        headers={"Authorization": f"Zoho-oauthtoken {caller.token}"},
    )
    assert answer.json() == sample("books-delete-item-response.json")
    assert zoho_sim.get("products", item["item_id"]) is None


@pytest.mark.parametrize(
    ("status", "code", "name"),
    [
        (429, 44, "books-error-ratelimit-perminute.json"),
        (429, 1070, "books-error-concurrency.json"),
        (500, None, "books-error-internal.json"),
    ],
)
def test_injected_error_bodies_equal_the_samples(zoho_sim, caller, status, code, name):
    zoho_sim.fail_next(status, code=code)
    answer = caller.get("/books/v3/invoices")
    assert answer.status_code == status
    assert answer.json() == sample(name)


def test_daily_limit_body_equals_the_sample():
    with ZohoSimulator(daily_limit=1000) as sim:
        sim.fail_next(429, code=45)
        assert Caller(sim).get("/books/v3/items").json() == sample("books-error-ratelimit-daily.json")


def test_rate_limit_headers_as_recorded():
    recorded = sample("books-get-item-response-headers.json")["headers"]
    with ZohoSimulator(daily_limit=1000) as sim:
        caller = Caller(sim)
        item = sim.seed("products", 1)[0]
        first = caller.get(f"/books/v3/items/{item['item_id']}")
        second = caller.get(f"/books/v3/items/{item['item_id']}")
    assert first.headers["content-type"] == recorded["content-type"]
    for name in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"):
        assert first.headers[name].isdigit() and recorded[name].isdigit()
    assert int(second.headers["x-rate-limit-remaining"]) == int(first.headers["x-rate-limit-remaining"]) - 1
    assert 0 < int(first.headers["x-rate-limit-reset"]) <= 86400


def test_organizations_list_like_the_sample(zoho_sim, caller):
    recorded = sample("books-list-organizations.json")
    answer = caller.get("/books/v3/organizations").json()
    assert answer.keys() == recorded.keys()
    assert answer["organizations"][0].keys() == recorded["organizations"][0].keys()
    assert answer["organizations"][0]["organization_id"] == zoho_sim.organization_id


def test_times_are_zoho_formatted(zoho_sim):
    recorded = sample("books-invoice.json")["invoice"]["last_modified_time"]
    ours = zoho_sim.seed("invoices", 1)[0]["last_modified_time"]
    assert len(ours) == len(recorded) and ours[-5] in "+-" and ours[10] == "T"


def test_locations_like_the_documented_location(zoho_sim, caller):
    documented = sample("inventory-location.json")
    answer = caller.get("/inventory/v1/locations").json()
    assert [row.keys() for row in answer["locations"]] == [documented.keys()] * len(zoho_sim.locations)
    item = zoho_sim.seed("products", 1)[0]
    assert {loc["location_id"] for loc in item["locations"]} == {row["location_id"] for row in answer["locations"]}
