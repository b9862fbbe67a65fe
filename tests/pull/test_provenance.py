"""A pulled change names its run and whoever started the run, on its audit row."""

from __future__ import annotations

import pytest

from sync.models import AuditTrail
from tdscore.actions import Actor, Via
from tests.pull.conftest import drain

pytestmark = pytest.mark.django_db


def test_a_pulled_change_names_its_run_and_who_started_it(sim, run_pull):
    sim.seed("customers", 3)
    run = run_pull("customers", "full", actor=Actor("alice", Via.COMMAND))
    drain()
    audits = AuditTrail.objects.filter(entity="customers")
    assert audits.count() == 3
    assert set(audits.values_list("source", "run_id", "actor")) == {("pull", run.pk, "alice")}
    assert run.started_by == "alice"


def test_a_scheduled_pull_names_the_schedule(sim, run_pull):
    sim.seed("products", 2)
    run = run_pull("products", "full", trigger="schedule")
    drain()
    assert set(AuditTrail.objects.values_list("run_id", "actor")) == {(run.pk, "schedule")}
