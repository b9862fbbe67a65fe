"""A run in the cluster never sleeps in its worker while Zoho is away: it keeps its checkpoint, goes
back to pending and is started again by a one-off schedule. Runs take only the workers the drainers
leave (run_slots), so the drain always has its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_q.models import Schedule

from sync import pull, run_lifecycle, schedules, tasks
from sync.config_keys import DRAINERS
from sync.models import SyncRun
from sync.zoho import breaker
from sync.zoho.models import BreakerState
from tdscore import config
from tests import factories
from tests.pull.conftest import PAGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster_of_two(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    config.update(DRAINERS, 1)


def open_breaker() -> None:
    now = timezone.now()
    for _ in range(5):  # zoho_breaker_consecutive_failures
        breaker.record_failure("connection refused", now)
    # Open for its cooldown from now, however often it opened before.
    BreakerState.objects.update(state=BreakerState.State.OPEN, open_until=now + timedelta(seconds=60))


def resumes() -> list[Schedule]:
    return list(Schedule.objects.filter(func__in=["sync.tasks.pull_task", "sync.tasks.reconcile_task"]))


def test_a_run_behind_the_open_breaker_gives_its_worker_back_and_is_rescheduled(sim, cluster_of_two):
    sim.seed("products", PAGE)
    run = pull.start_run("products", "full", now=timezone.now(), trigger="schedule")
    open_breaker()
    began = timezone.now()
    assert tasks.pull_task(run.pk) == SyncRun.Status.PENDING
    run.refresh_from_db()
    assert run.checkpoint["waiting_for"].startswith("Zoho answered")
    assert "breaker_open" in run.checkpoint["waiting_for"]
    [again] = resumes()
    assert again.schedule_type == Schedule.ONCE and again.args == f"({run.pk},)"
    assert began + timedelta(seconds=50) <= again.next_run <= began + timedelta(seconds=61)  # the cooldown
    # The breaker closes: the same run, started again, completes from where it was.
    breaker.reset(timezone.now(), actor=factories.actor("test"))
    assert tasks.pull_task(run.pk) == SyncRun.Status.COMPLETED
    run.refresh_from_db()
    assert run.fetched == PAGE


def test_a_run_that_waited_the_whole_window_fails_and_the_next_resumes(sim, cluster_of_two):
    run = pull.start_run("products", "full", now=timezone.now(), trigger="schedule")
    open_breaker()
    assert tasks.pull_task(run.pk) == SyncRun.Status.PENDING
    with time_machine.travel(timezone.now() + pull.TRANSIENT_WINDOW, tick=False):
        open_breaker()
        assert tasks.pull_task(run.pk) == SyncRun.Status.FAILED
    run.refresh_from_db()
    assert "still waiting after" in run.error


def test_a_command_still_waits_in_place(sim, run_pull):
    sim.seed("products", PAGE)
    open_breaker()
    run = run_pull("products", "full")  # the clock moves past the cooldown instead of sleeping
    assert run.status == SyncRun.Status.COMPLETED, run.error
    assert resumes() == []


def test_runs_take_only_the_workers_the_drainers_leave(sim, cluster_of_two):
    busy = pull.start_run("invoices", "full", now=timezone.now(), trigger="schedule")
    run_lifecycle.claim(busy.pk, now=timezone.now())  # running: holds the one worker runs may take
    run = pull.start_run("products", "full", now=timezone.now(), trigger="schedule")
    assert run_lifecycle.run_slots() == 1
    assert tasks.pull_task(run.pk) == SyncRun.Status.PENDING
    run.refresh_from_db()
    assert (run.status, run.started_at) == (SyncRun.Status.PENDING, None)
    assert [s.args for s in resumes()] == [f"({run.pk},)"]
    assert "pull and reconciliation runs may take 1 at once" in schedules.worker_line()
