"""The simulator's REST API over real HTTP: tokens, lists, details, edits and deletes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync.payloads import parse_zoho_time


def test_list_walks_every_page_and_each_record_once(zoho_sim, caller):
    seeded = {obj["invoice_id"] for obj in zoho_sim.seed("invoices", 23)}
    answers = caller.pages("/books/v3/invoices", per_page=5)
    assert len(answers) == 5
    listed = [row["invoice_id"] for a in answers for row in a.json()["invoices"]]
    assert sorted(listed) == sorted(seeded)
    assert [a.json()["page_context"]["page"] for a in answers] == [1, 2, 3, 4, 5]


def test_list_rows_are_summaries_without_lines(zoho_sim, caller):
    zoho_sim.seed("invoices", 2)
    rows = caller.get("/books/v3/invoices").json()["invoices"]
    assert all("line_items" not in row and row["total"] > 0 for row in rows)


def test_per_page_is_capped_at_200(zoho_sim, caller):
    zoho_sim.seed("users", 205)
    answer = caller.get("/books/v3/users", per_page=500).json()
    assert len(answer["users"]) == 200 and answer["page_context"]["per_page"] == 200
    assert answer["page_context"]["has_more_page"] is True


def test_detail_carries_the_lines(zoho_sim, caller):
    invoice = zoho_sim.seed("invoices", 1)[0]
    answer = caller.get(f"/books/v3/invoices/{invoice['invoice_id']}").json()
    assert answer["code"] == 0 and answer["invoice"]["line_items"] == invoice["line_items"]


def test_invoices_lines_refer_to_seeded_items_and_customers(zoho_sim):
    items = {obj["item_id"] for obj in zoho_sim.seed("products", 5)}
    customers = {obj["contact_id"] for obj in zoho_sim.seed("customers", 3)}
    invoice = zoho_sim.seed("invoices", 1)[0]
    assert invoice["customer_id"] in customers
    assert {line["item_id"] for line in invoice["line_items"]} <= items


def test_seed_is_deterministic():
    from zohosim import ZohoSimulator

    first, second = ZohoSimulator(seed=7), ZohoSimulator(seed=7)
    assert first.seed("products", 3) == second.seed("products", 3)


def test_update_moves_last_modified_time_to_the_clock(zoho_sim, caller):
    invoice = zoho_sim.seed("invoices", 1)[0]
    zoho_sim.advance(120)
    before = zoho_sim.now().replace(microsecond=0)
    zoho_sim.update("invoices", invoice["invoice_id"], status="void")
    after = zoho_sim.now()
    detail = caller.get(f"/books/v3/invoices/{invoice['invoice_id']}").json()["invoice"]
    assert detail["status"] == "void"
    assert before <= parse_zoho_time(detail["last_modified_time"]) <= after
    assert detail["last_modified_time"].endswith(before.strftime("%z"))


def test_deleted_record_leaves_lists_and_its_detail_answers_1002(zoho_sim, caller):
    kept, gone = zoho_sim.seed("bills", 2)
    zoho_sim.delete("bills", gone["bill_id"])
    assert [row["bill_id"] for row in caller.get("/books/v3/bills").json()["bills"]] == [kept["bill_id"]]
    answer = caller.get(f"/books/v3/bills/{gone['bill_id']}")
    assert answer.status_code == 404
    assert answer.json() == {"code": 1002, "message": "Bill does not exist."}


def test_last_modified_time_filter_returns_changed_invoices_only(zoho_sim, caller):
    invoices = zoho_sim.seed("invoices", 12)
    zoho_sim.advance(60)
    since = zoho_sim.now()
    zoho_sim.advance(30)
    changed = {zoho_sim.update("invoices", obj["invoice_id"], status="sent")["invoice_id"] for obj in invoices[:3]}
    stamp = since.strftime("%Y-%m-%dT%H:%M:%S%z")
    rows = caller.get("/books/v3/invoices", last_modified_time=stamp).json()["invoices"]
    assert {row["invoice_id"] for row in rows} == changed


def test_last_modified_time_filter_is_inclusive(zoho_sim, caller):
    invoice = zoho_sim.seed("invoices", 1)[0]
    rows = caller.get("/books/v3/invoices", last_modified_time=invoice["last_modified_time"]).json()["invoices"]
    assert [row["invoice_id"] for row in rows] == [invoice["invoice_id"]]


def test_last_modified_time_filter_is_silently_ignored_for_contacts(zoho_sim, caller):
    zoho_sim.seed("customers", 4)
    future = (zoho_sim.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S%z")
    answer = caller.get("/books/v3/contacts", last_modified_time=future)
    assert answer.status_code == 200 and len(answer.json()["contacts"]) == 4


def test_contacts_filter_by_contact_type(zoho_sim, caller):
    zoho_sim.seed("customers", 3)
    vendors = {obj["contact_id"] for obj in zoho_sim.seed("vendors", 2)}
    rows = caller.get("/books/v3/contacts", contact_type="vendor").json()["contacts"]
    assert {row["contact_id"] for row in rows} == vendors


def test_sort_by_last_modified_time(zoho_sim, caller):
    first, second, third = zoho_sim.seed("customers", 3)
    zoho_sim.advance(10)
    zoho_sim.update("customers", first["contact_id"], phone="1")
    rows = caller.get("/books/v3/contacts", sort_column="last_modified_time", sort_order="D").json()["contacts"]
    assert rows[0]["contact_id"] == first["contact_id"]


@pytest.mark.parametrize("slug", ["customers", "vendors"])
def test_contacts_are_filed_by_type(zoho_sim, slug):
    contact = zoho_sim.seed(slug, 1)[0]
    other = "vendors" if slug == "customers" else "customers"
    assert zoho_sim.get(slug, contact["contact_id"]) == contact
    assert zoho_sim.get(other, contact["contact_id"]) is None


def test_payment_detail_says_updated_time_where_its_row_says_last_modified_time(zoho_sim, caller):
    payment = zoho_sim.seed("payments", 1)[0]
    row = caller.get("/books/v3/customerpayments").json()["customerpayments"][0]
    detail = caller.get(f"/books/v3/customerpayments/{payment['payment_id']}").json()["payment"]
    assert "last_modified_time" in row and "last_modified_time" not in detail
    assert detail["updated_time"] == row["last_modified_time"]


def test_items_carry_stock_per_location_and_adjustments_move_it(zoho_sim, caller):
    item = next(obj for obj in zoho_sim.seed("products", 10) if obj["track_inventory"])
    location = item["locations"][0]
    zoho_sim.adjust_stock(item["item_id"], location["location_id"], 7)
    detail = caller.get(f"/inventory/v1/items/{item['item_id']}").json()["item"]
    moved = next(loc for loc in detail["locations"] if loc["location_id"] == location["location_id"])
    assert moved["location_stock_on_hand"] == (location["location_stock_on_hand"] or 0) + 7
    assert detail["last_modified_time"] == item["last_modified_time"]  # a movement is no item edit
    rows = caller.get("/inventory/v1/items").json()["items"]
    row = next(r for r in rows if r["item_id"] == item["item_id"])
    assert row["stock_on_hand"] == item["stock_on_hand"] + 7
    adjustments = caller.get("/inventory/v1/inventoryadjustments").json()["inventory_adjustments"]
    assert len(adjustments) == 1


def test_every_entity_answers_list_and_detail(zoho_sim, caller):
    from sync.entities import ENTITIES

    for slug, entity in ENTITIES.items():
        obj = zoho_sim.seed(slug, 1)[0]
        prefix = "/books/v3" if entity.api == "books" else "/inventory/v1"
        listed = caller.get(f"{prefix}/{entity.path}").json()[entity.list_key]
        assert obj[entity.id_field] in {row[entity.id_field] for row in listed}, slug
        detail = caller.get(f"{prefix}/{entity.path}/{obj[entity.id_field]}").json()
        assert detail[entity.single_key][entity.id_field] == obj[entity.id_field], slug


def test_seeded_history_ends_an_hour_before_now(zoho_sim):
    settled = zoho_sim.now() - timedelta(hours=1)
    for invoice in zoho_sim.seed("invoices", 30):
        assert parse_zoho_time(invoice["created_time"]) <= parse_zoho_time(invoice["last_modified_time"]) <= settled


def test_items_filter_by_modified_time_in_inventory_but_not_in_books(zoho_sim, caller):
    items = zoho_sim.seed("products", 4)
    zoho_sim.advance(60)
    since = zoho_sim.clock.format()
    zoho_sim.update("products", items[0]["item_id"], rate=1)
    assert len(caller.get("/inventory/v1/items", last_modified_time=since).json()["items"]) == 1
    assert len(caller.get("/books/v3/items", last_modified_time=since).json()["items"]) == 4


def test_payment_added_as_its_detail_keeps_its_time(zoho_sim):
    payment = zoho_sim.seed("payments", 1)[0]
    zoho_sim.delete("payments", payment["payment_id"])
    assert zoho_sim.add("payments", payment)["updated_time"] == payment["updated_time"]
