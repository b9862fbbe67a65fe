"""Incremental pulls land every change whatever order Zoho lists in.

Zoho documents `sort_column=last_modified_time` for contacts and Inventory items, not for
invoices: there it may ignore the parameter or refuse it, and a record edited while a pull walks
the pages can move between them. Each case runs against a simulator doing just that, over HTTP,
straight through and killed midway then resumed.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from erp.models import Invoice
from sync.config_keys import PULL_OVERLAP_SECONDS
from sync.models import SyncRun
from sync.payloads import parse_zoho_time
from tdscore import config
from tests.conftest import point_at
from zohosim import ZohoSimulator
from zohosim.modules import Sort

from .conftest import PAGE, drain, list_calls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def make_sim(settings, clock):
    started = []

    def make(**options) -> ZohoSimulator:
        sim = ZohoSimulator(**options).start()
        started.append(sim)
        point_at(settings, sim)
        settings.TDS_PULL_PAGE_SIZE = PAGE
        settings.ZOHO_PLAN = "premium"
        return sim

    yield make
    for sim in started:
        sim.stop()


def synced_then_changed(sim, run_pull, clock, *, changed: int) -> list[str]:
    """A full pull of 3 pages of invoices, drained; then `changed` of them edited in random order."""
    invoices = sim.seed("invoices", PAGE * 3)
    assert run_pull("invoices", "full").status == SyncRun.Status.COMPLETED
    drain()
    clock(600)
    picked = random.Random(7).sample([i["invoice_id"] for i in invoices], changed)
    for n, invoice_id in enumerate(picked):
        sim.update("invoices", invoice_id, reference_number=f"edit-{n}")
        clock(1)  # edits a second apart: their order by modified time differs from Zoho's list order
    return picked


def assert_erp_matches_zoho(sim) -> None:
    zoho = {i["invoice_id"]: parse_zoho_time(i["last_modified_time"]) for i in sim.all("invoices")}
    erp = dict(Invoice.objects.values_list("zoho_id", "zoho_last_modified"))
    assert erp == zoho


def kill_after_page(sim, page: int):
    def on_page(run):
        if run.checkpoint["page"] == page:
            sim.drop_next(count=1000)

    return on_page


@pytest.mark.parametrize("sort", [Sort.IGNORED, Sort.REFUSED, Sort.HONOURED])
def test_an_incremental_pull_of_invoices_lands_every_change_however_zoho_answers_a_sort(
    make_sim, run_pull, clock, sort
):
    config.update(PULL_OVERLAP_SECONDS, 0)
    sim = make_sim(sort={"invoices": sort})
    synced_then_changed(sim, run_pull, clock, changed=PAGE * 2 + 5)

    run = run_pull("invoices", "incremental")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    assert all("sort_column" not in r.params for r in list_calls(sim, "/books/v3/invoices"))
    drain()
    assert_erp_matches_zoho(sim)


@pytest.mark.parametrize("sort", [Sort.IGNORED, Sort.REFUSED])
def test_a_resumed_incremental_pull_lands_every_change(make_sim, run_pull, clock, sort):
    config.update(PULL_OVERLAP_SECONDS, 0)
    sim = make_sim(sort={"invoices": sort})
    synced_then_changed(sim, run_pull, clock, changed=PAGE * 2 + 5)

    first = run_pull("invoices", "incremental", on_page=kill_after_page(sim, 1))
    assert first.status == SyncRun.Status.FAILED
    first_filter = list_calls(sim, "/books/v3/invoices")[-1].params["last_modified_time"]
    sim.clear_faults()
    sim.clear_requests()
    second = run_pull("invoices", "incremental")

    assert second.status == SyncRun.Status.COMPLETED, second.error
    # From its next page, with the very filter the first run used.
    calls = list_calls(sim, "/books/v3/invoices")
    assert (int(calls[0].params["page"]), calls[0].params["last_modified_time"]) == (2, first_filter)
    drain()
    assert_erp_matches_zoho(sim)


def edited_mid_walk(sim, changed: list[str], *, after_page: int) -> str:
    """Zoho lists the filtered invoices by modified time (oldest first); one on the first page is
    edited again while the pull walks, so it moves to the end and every later row moves up one."""
    sim.list_order("invoices", "last_modified_time", "A")
    moving = changed[3]
    sim.edit_after_page("invoices", after_page, moving, reference_number="edited mid-walk")
    # The last page answers a little later, so the second walk begins in a later second than the
    # edit (an edit in the very second a walk begins counts as made during it).
    sim.slow_next(1.2, path_contains="page=3")
    return moving


def test_a_record_edited_mid_walk_moving_between_pages_loses_no_change(make_sim, run_pull, clock):
    config.update(PULL_OVERLAP_SECONDS, 0)
    sim = make_sim()
    changed = synced_then_changed(sim, run_pull, clock, changed=PAGE * 2 + 5)
    moving = edited_mid_walk(sim, changed, after_page=1)
    sim.clear_requests()

    run = run_pull("invoices", "incremental")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    pages = [int(r.params["page"]) for r in list_calls(sim, "/books/v3/invoices")]
    assert pages == [1, 2, 3, 1, 2, 3]  # the walk saw a row move under it and read the list again
    drain()
    assert_erp_matches_zoho(sim)
    assert Invoice.objects.get(zoho_id=moving).raw["reference_number"] == "edited mid-walk"


def test_a_run_resumed_after_a_record_moved_between_its_pages_loses_no_change(make_sim, run_pull, clock):
    config.update(PULL_OVERLAP_SECONDS, 0)
    sim = make_sim()
    changed = synced_then_changed(sim, run_pull, clock, changed=PAGE * 2 + 5)
    edited_mid_walk(sim, changed, after_page=1)

    first = run_pull("invoices", "incremental", on_page=kill_after_page(sim, 1))
    assert first.status == SyncRun.Status.FAILED
    sim.clear_faults()
    second = run_pull("invoices", "incremental")

    assert second.status == SyncRun.Status.COMPLETED, second.error
    drain()
    assert_erp_matches_zoho(sim)


def test_the_watermark_is_where_the_walk_began_not_the_newest_row_seen(make_sim, run_pull, clock):
    sim = make_sim()
    sim.seed("invoices", 3)
    before = timezone.now().replace(microsecond=0)

    run_pull("invoices", "full")

    from sync.models import SyncCursor

    watermark = SyncCursor.objects.get(entity="invoices", run_type="full").watermark
    assert before <= watermark <= timezone.now()


def test_rows_that_keep_moving_leave_the_watermark_for_the_next_run_to_read_again(make_sim, run_pull, clock):
    from sync.models import SyncCursor

    config.update(PULL_OVERLAP_SECONDS, 0)
    sim = make_sim()
    changed = synced_then_changed(sim, run_pull, clock, changed=PAGE * 2 + 5)
    old = SyncCursor.objects.get(entity="invoices", run_type="full").watermark
    sim.list_order("invoices", "last_modified_time", "A")
    later = timezone.now() + timedelta(hours=1)  # modified after either walk began, however long they take
    for page in (1, 4):  # page 1 of the first walk, page 1 of the second
        sim.edit_after_page("invoices", 1, changed[page], reference_number=f"again-{page}", last_modified_time=later)

    run = run_pull("invoices", "incremental")

    assert run.status == SyncRun.Status.COMPLETED, run.error
    cursor = SyncCursor.objects.get(entity="invoices", run_type="incremental")
    assert cursor.watermark is None  # not advanced: the next run reads from `old` again
    assert old is not None
    assert run.logs.filter(message__contains="the watermark stays").exists()
