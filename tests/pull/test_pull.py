from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from erp.models import Bill, Customer, Invoice, InvoiceLine, Product, StockLevel, Vendor
from sync import pull
from sync.config_keys import PULL_OVERLAP_SECONDS
from sync.models import QueueItem, SyncCursor, SyncRun
from tdscore import config

from .conftest import PAGE, drain, list_calls

pytestmark = pytest.mark.django_db(transaction=True)


def test_full_sync_lands_every_product_across_pages(sim, run_pull):
    seeded = sim.seed("products", PAGE * 5 + 3)

    run = run_pull("products", "full")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    assert len(list_calls(sim, "/inventory/v1/items")) == 6
    assert run.fetched == run.queued == len(seeded)
    assert QueueItem.objects.filter(entity="products", source="pull", sync_run=run).count() == len(seeded)
    drain()
    assert set(Product.objects.values_list("zoho_id", flat=True)) == {p["item_id"] for p in seeded}


def test_full_sync_of_contacts_files_customers_and_vendors_apart(sim, run_pull):
    customers = sim.seed("customers", PAGE * 5 + 1)
    vendors = sim.seed("vendors", 7)

    for slug in ("customers", "vendors"):
        assert run_pull(slug, "full").status == SyncRun.Status.COMPLETED
    drain()

    assert set(Customer.objects.values_list("zoho_id", flat=True)) == {c["contact_id"] for c in customers}
    assert set(Vendor.objects.values_list("zoho_id", flat=True)) == {v["contact_id"] for v in vendors}


def test_full_sync_of_documents_fetches_details_so_lines_land(sim, run_pull):
    sim.seed("customers", 3)
    sim.seed("products", 5)
    invoices = sim.seed("invoices", PAGE * 5)

    run = run_pull("invoices", "full")
    drain()

    assert run.status == SyncRun.Status.COMPLETED, run.error
    assert len(list_calls(sim, "/books/v3/invoices")) == 5
    details = [r for r in sim.api_calls() if "/books/v3/invoices/" in r.path]
    assert len(details) == len(invoices)
    assert Invoice.objects.filter(is_summary=False).count() == len(invoices)
    expected_lines = sum(len(sim.get("invoices", i["invoice_id"])["line_items"]) for i in invoices)
    assert InvoiceLine.objects.count() == expected_lines


def test_documents_already_stored_at_their_version_need_no_detail_call(sim, run_pull):
    sim.seed("bills", PAGE * 2)
    run_pull("bills", "full")
    drain()
    sim.clear_requests()

    run = run_pull("bills", "full")

    assert run.status == SyncRun.Status.COMPLETED
    assert [r for r in sim.api_calls() if "/books/v3/bills/" in r.path] == []
    assert run.calls == 2


def test_incremental_fetches_only_changed_records(sim, run_pull, clock):
    config.update(PULL_OVERLAP_SECONDS, 0)
    products = sim.seed("products", PAGE * 5)
    run_pull("products", "full")
    drain()
    clock(600)
    changed = {sim.update("products", p["item_id"], rate=1.5)["item_id"] for p in products[:3]}
    clock(1)  # a change in the very second a walk begins counts as one made during it
    sim.clear_requests()

    run = run_pull("products", "incremental")

    assert run.run_type == SyncRun.RunType.INCREMENTAL
    assert run.status == SyncRun.Status.COMPLETED, run.error
    calls = list_calls(sim, "/inventory/v1/items")
    assert len(calls) == 1 and "last_modified_time" in calls[0].params
    # The watermark is when the full walk began: only the three changed since match the filter.
    assert run.fetched == len(changed)
    assert changed <= set(run.queue_items.values_list("object_id", flat=True))
    drain()
    assert set(Product.objects.filter(rate=1.5).values_list("zoho_id", flat=True)) == changed


def test_incremental_contacts_read_newest_first_and_stop_at_the_cursor(sim, run_pull, clock):
    config.update(PULL_OVERLAP_SECONDS, 0)
    customers = sim.seed("customers", PAGE * 5)
    run_pull("customers", "full")
    clock(600)
    renamed = sim.update("customers", customers[10]["contact_id"], contact_name="Renamed Ltd")
    clock(1)
    sim.clear_requests()

    run = run_pull("customers", "incremental")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    calls = list_calls(sim, "/books/v3/contacts")
    assert len(calls) == 1 and calls[0].params["sort_order"] == "D"
    assert renamed["contact_id"] in set(run.queue_items.values_list("object_id", flat=True))
    assert run.queued <= 2  # the renamed one and the row at the watermark
    drain()
    assert Customer.objects.get(zoho_id=renamed["contact_id"]).contact_name == "Renamed Ltd"


def test_incremental_reads_from_the_watermark_minus_the_overlap(sim, run_pull):
    sim.seed("invoices", 3)
    run_pull("invoices", "full")
    watermark = SyncCursor.objects.get(entity="invoices", run_type="full").watermark
    sim.clear_requests()

    run_pull("invoices", "incremental")

    sent = list_calls(sim, "/books/v3/invoices")[0].params["last_modified_time"]
    assert sent == (watermark - timedelta(seconds=300)).astimezone(watermark.tzinfo).strftime("%Y-%m-%dT%H:%M:%S%z")


def test_entities_zoho_cannot_filter_fall_back_to_a_full_scan(sim, run_pull):
    sim.seed("credit-notes", 3)

    run = run_pull("credit-notes", "incremental")

    assert run.run_type == SyncRun.RunType.FULL
    assert run.fetched == 3


def drop_connections_after_page(sim, page: int):
    """An on_page hook: from the page after `page` on, the simulator drops every connection."""

    def on_page(run):
        if run.checkpoint["page"] == page:
            sim.drop_next(count=1000)

    return on_page


def test_a_run_killed_midway_resumes_from_its_checkpoint(sim, run_pull):
    products = sim.seed("products", PAGE * 6)

    first = run_pull("products", "full", on_page=drop_connections_after_page(sim, 3))

    assert first.status == SyncRun.Status.FAILED
    assert first.fetched == PAGE * 3
    sim.clear_faults()
    sim.clear_requests()

    second = run_pull("products", "full")

    assert second.status == SyncRun.Status.COMPLETED, second.error
    # At its next page, with the same filter: nothing moved in between, so nothing is read twice.
    assert second.fetched == PAGE * 3
    assert sorted(int(r.params["page"]) for r in list_calls(sim, "/inventory/v1/items")) == [4, 5, 6]
    drain()
    assert Product.objects.count() == len(products)
    assert SyncCursor.objects.get(entity="products", run_type="full").checkpoint.get("resume") is None


def test_an_unfilterable_run_resumes_by_page_number(sim, run_pull):
    sim.seed("credit-notes", PAGE * 5)
    first = run_pull("credit-notes", "full", on_page=drop_connections_after_page(sim, 2))
    assert first.status == SyncRun.Status.FAILED
    sim.clear_faults()
    sim.clear_requests()

    run = run_pull("credit-notes", "full")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    pages = sorted(int(r.params["page"]) for r in list_calls(sim, "/books/v3/creditnotes"))
    assert pages == [3, 4, 5]


def test_a_second_run_of_an_entity_is_refused_while_one_is_active(sim):
    first = pull.start_run("products", "full", now=timezone.now(), trigger="manual")

    with pytest.raises(pull.run_lifecycle.RunRefused, match="overlap"):
        pull.start_run("products", "incremental", now=timezone.now(), trigger="schedule")
    assert SyncRun.objects.filter(entity="products").count() == 1
    assert first.status == SyncRun.Status.PENDING


def test_a_run_whose_heartbeat_stopped_is_failed_and_no_longer_blocks(sim):
    old = timezone.now() - timedelta(hours=1)
    stuck = SyncRun.objects.create(
        entity="products", run_type="full", status="running", heartbeat_at=old, started_at=old
    )

    run = pull.start_run("products", "full", now=timezone.now(), trigger="manual")

    stuck.refresh_from_db()
    assert stuck.status == SyncRun.Status.FAILED and "stale" in stuck.error
    assert run.status == SyncRun.Status.PENDING


def test_a_429_storm_slows_the_run_without_failing_it(sim, run_pull):
    sim.seed("products", PAGE * 3)
    # Longer than the client's own retries (zoho_call_retries = 3): the run waits it out too.
    sim.fail_next(429, count=8, code=44, path_contains="/items")
    started = timezone.now()

    run = run_pull("products", "full")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    assert run.fetched == PAGE * 3
    assert timezone.now() - started >= timedelta(minutes=8)  # Zoho's minute pause after each 429
    assert run.logs.filter(message__contains="rate_limit").exists()


def test_stock_run_queues_snapshots_of_items_whose_stock_moved(sim, run_pull):
    items = sim.seed("products", PAGE * 2)
    tracked = [i for i in items if i["stock_on_hand"] != ""]
    run = run_pull("stock", "full")
    drain()

    assert run.run_type == SyncRun.RunType.STOCK and run.status == SyncRun.Status.COMPLETED, run.error
    assert StockLevel.objects.values("item_id").distinct().count() == len(tracked)
    moved = tracked[0]
    sim.adjust_stock(moved["item_id"], moved["locations"][0]["location_id"], 5)
    sim.clear_requests()

    again = run_pull("stock", "full")

    assert [r for r in sim.api_calls() if "/inventory/v1/items/" in r.path] == []  # no call per item
    bulk = [r for r in sim.api_calls() if r.path == "/inventory/v1/itemdetails"]
    assert [r.params["item_ids"] for r in bulk] == [moved["item_id"]]
    assert again.queued >= 1


def test_runs_count_their_calls_and_duration(sim, run_pull):
    sim.seed("bills", 5)

    run = run_pull("bills", "full")

    assert run.calls == 1 + 5  # one list page, five details
    assert run.duration is not None and run.finished_at >= run.started_at
    assert Bill.objects.count() == 0  # nothing is written to ERP tables before the queue drains


def test_a_newer_pulled_row_supersedes_an_older_one_still_waiting(sim, run_pull, clock):
    (product,) = sim.seed("products", 1)
    run_pull("products", "full")
    clock(60)
    sim.update("products", product["item_id"], name="Newer")

    run_pull("products", "full")

    rows = QueueItem.objects.filter(object_id=product["item_id"]).order_by("pk")
    assert [(r.status, r.skip_reason) for r in rows] == [("skipped", "superseded"), ("pending", "")]
    drain()
    assert Product.objects.get(zoho_id=product["item_id"]).name == "Newer"


@pytest.mark.postgres
def test_two_starters_at_once_get_one_run(sim):
    import threading

    from django.db import connection

    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            pull.start_run("invoices", "full", now=timezone.now(), trigger="schedule")
            outcomes.append("started")
        except pull.run_lifecycle.RunRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["refused", "refused", "refused", "started"]
    assert SyncRun.objects.filter(entity="invoices").count() == 1


def test_a_run_declared_stale_by_another_process_stops_without_overwriting_it(sim, run_pull):
    sim.seed("products", PAGE * 3)

    def declared_stale(run):
        # What fail_stale() in another process does when this run's heartbeat looked dead.
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.FAILED, error="stale: no heartbeat")

    run = run_pull("products", "full", on_page=declared_stale)

    assert run.status == SyncRun.Status.FAILED and run.error == "stale: no heartbeat"
    assert run.fetched == PAGE  # it stopped at its next heartbeat


def test_a_run_failing_unexpectedly_keeps_its_traceback(sim, run_pull):
    sim.seed("products", PAGE * 2)

    def broken_progress(run):
        raise RuntimeError("progress output broke")

    run = run_pull("products", "full", on_page=broken_progress)

    assert run.status == SyncRun.Status.FAILED
    assert run.error == "RuntimeError: progress output broke"
    line = run.logs.get(level="error")
    assert "Traceback (most recent call last)" in line.context["traceback"]
    assert "broken_progress" in line.context["traceback"]
