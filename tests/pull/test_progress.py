"""Progress of the long commands (sync.progress): counted lines when the output is not a terminal, a
tqdm bar on a real one (a pty); and `sync_zoho --since`, which says what a backfill costs first."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import termios
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sync import survey
from sync.models import SyncRun
from sync.payloads import parse_zoho_time
from sync.progress import Progress
from tdscore.actions import Actor
from tdscore.enums import Action
from tdscore.models import OperatorAction
from tests import factories
from tests.dashboard.conftest import dead_lettered

from .conftest import PAGE, drain


def output(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_plain_output_is_a_line_each_time_the_count_passes_a_multiple_of_every():
    out = StringIO()
    with Progress(out, "rows", total=5, unit="rows", every=2) as progress:
        for n in range(1, 6):
            progress.advance(seen=n)
    assert [line.split(" · ")[:2] for line in out.getvalue().splitlines()] == [
        ["rows: 2/5 rows (40%)", "seen 2"],
        ["rows: 4/5 rows (80%)", "seen 4"],
        ["rows: 5/5 rows (100%)", "seen 5"],  # the end, though 5 is no multiple of 2
    ]


@pytest.mark.django_db
def test_replay_dlq_counts_what_it_replayed():
    for n in range(3):
        dead_lettered("products", str(n))
    lines = output("replay_dlq", "--all").splitlines()
    assert lines == ["dead letters: 3/3 rows (100%) · replayed 3 · cannot be replayed 0", "replayed 3"]


@pytest.mark.django_db
def test_rebuild_erp_counts_the_rows_queued_and_then_mapped():
    for zoho_id in ("1001", "1002"):
        factories.queue_item(object_id=zoho_id)
    drain()
    lines = output("rebuild_erp", "--entity", "products").splitlines()
    assert lines[0] == "products queued: 2 rows"
    assert lines[2] == "products mapped: 2/2 rows (100%) · unchanged 2"


@pytest.mark.django_db(transaction=True)
def test_sync_zoho_prints_a_line_per_page_with_the_calls_of_those_planned(sim):
    sim.seed("products", PAGE * 2 + 5)
    lines = output("sync_zoho", "--entity", "products", "--mode", "full").splitlines()
    pages = [line for line in lines if " · page " in line]
    assert [re.search(r"page (\d+) · fetched (\d+)", line).groups() for line in pages] == [
        ("1", "20"),
        ("2", "40"),
        ("3", "45"),
    ]
    assert pages[0].startswith("products: 1/")


@pytest.mark.django_db(transaction=True)
def test_reconcile_prints_the_calls_and_rows_it_read(sim):
    sim.seed("products", PAGE + 1)
    lines = output("reconcile", "--entity", "products").splitlines()
    assert SyncRun.objects.get().started_by == Actor.command().name  # and so says the action log
    assert OperatorAction.objects.get().action == Action.RUN_START
    assert lines[-2:] == [
        "products scanned: 2/2 calls (100%) · fetched 21",
        "products: Zoho 21, ERP 0; drift: missing 21, outdated 0, deleted_in_zoho 0, tombstoned_alive 0",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_backfill_says_its_cost_and_end_before_it_starts_and_then_spends_about_that(sim):
    sim.seed("invoices", 60)  # modified over the last 90 days
    since = (timezone.now() - timedelta(days=30)).replace(microsecond=0)
    modified = sum(1 for row in sim.all("invoices") if parse_zoho_time(row["last_modified_time"]) >= since)
    lines = output("sync_zoho", "--entity", "invoices", "--since", since.isoformat()).splitlines()

    assert lines[0].startswith("Backfill of invoices since ") and "the premium plan's budget" in lines[0]
    stated = re.search(r"about (\d+) records modified since then, (\d+) calls, .*; done at about ", lines[1])
    records, calls = int(stated[1]), int(stated[2])
    spent = SyncRun.objects.get().calls
    assert records / survey.RATIO <= modified <= records * survey.RATIO
    assert calls / survey.RATIO <= spent <= calls * survey.RATIO
    assert SyncRun.objects.get().fetched == modified  # what changed since then, no more


@pytest.mark.django_db
@pytest.mark.parametrize("since", ["last tuesday", "2026-13-01", "2999-01-01"])
def test_a_backfill_from_a_date_that_is_not_one_in_the_past_is_refused(since):
    with pytest.raises(CommandError, match="--since"):
        call_command("sync_zoho", "--entity", "invoices", "--since", since)
    assert not SyncRun.objects.exists()


@pytest.mark.django_db
def test_on_a_terminal_the_command_draws_a_tqdm_bar():
    for n in range(3):
        dead_lettered("products", str(n))
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 wide
    with os.fdopen(follower, "w") as terminal:
        call_command("replay_dlq", "--all", stdout=terminal, stderr=StringIO())
    drawn = b""
    while select.select([leader], [], [], 0.2)[0]:
        try:
            drawn += os.read(leader, 4096)
        except OSError:  # the follower end is closed: all was read
            break
    os.close(leader)
    text = drawn.decode()
    assert "\r" in text  # redrawn in place, not line after line
    assert re.search(r"dead letters: 100%\|█+\| 3/3 \[", text), text
    assert "replayed=3" in text
