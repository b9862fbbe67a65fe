"""Zoho fails under a pull in every way it does: a burst of 5xx, a 429 storm, dropped connections,
a revoked refresh token. The run waits or defers, the breaker and auth alerts are raised, and the
next runs resume at their checkpoint until the pull completes with one queue row per (object,
version) and every object in the ERP.

Against the simulator over real HTTP; waits move the clock (tests/pull/conftest.py), so the whole
outage takes seconds.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.utils import timezone

from alerts import engine
from alerts.config_keys import ALERT_CLEAR_EVALUATIONS
from alerts.models import Alert
from erp.models import Invoice
from sync import pull
from sync.models import QueueItem, SyncRun
from sync.zoho import breaker
from sync.zoho.client import ZohoClient
from tdscore import config
from tests.pull.conftest import PAGE, drain

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PAGES = 5
STOPPED = (SyncRun.Status.DEFERRED, SyncRun.Status.FAILED)  # checkpoint kept either way


def open_alerts(rule: str) -> int:
    return Alert.objects.filter(rule=rule).exclude(status=Alert.Status.RESOLVED).count()


def test_a_pull_through_a_zoho_outage_resumes_and_completes_once(sim, clock):
    invoices = sim.seed("invoices", PAGE * PAGES)
    runs: list[SyncRun] = []
    seen = Counter()  # what the alert round saw while the run waited: rules with an open alert, breaker states
    done = set()

    def wait(seconds: float) -> None:
        # The run's waits move the clock; the alert round runs every minute meanwhile, as the cluster's does.
        clock(seconds)
        engine.evaluate(timezone.now())
        seen[breaker.state(timezone.now()).name] += 1
        for rule in ("breaker_open", "zoho_auth"):
            seen[rule] += open_alerts(rule)

    def pull_with(fault_after_page: int | None = None, fault=None) -> SyncRun:
        def on_page(run):
            if run.checkpoint.get("page") == fault_after_page and fault_after_page not in done:
                done.add(fault_after_page)
                fault()

        client = ZohoClient(sleep=wait)
        run = pull.pull_entity("invoices", "full", now=timezone.now(), client=client, sleep=wait, on_page=on_page)
        runs.append(run)
        return run

    # 1. After page 1, Zoho answers 500 to everything: the run gives up waiting, and the next
    # scheduled runs meet the outage too; the breaker opens and they wait on it, not on Zoho.
    sim.clear_requests()
    pull_with(1, lambda: sim.fail_next(500, count=1000))
    for _ in range(3):
        clock(60)
        pull_with()
    outage = dict(seen)
    calls_in_outage = len(sim.api_calls())

    # 2. Zoho is back but throttles (a 429 storm) and drops connections; after page 3 the grant is revoked.
    sim.clear_faults()
    clock(3600)
    sim.fail_next(429, count=6, code=44)
    sim.drop_next(count=3)

    def revoke():
        sim.revoke_tokens()
        sim.expire_tokens()

    seen.clear()
    first_after_outage = len(runs)
    pull_with(3, revoke)
    revoked_run = len(runs) - 1
    engine.evaluate(timezone.now())  # the minute's alert round
    revoked = {**seen, "state after": breaker.state(timezone.now()).name, "zoho_auth after": open_alerts("zoho_auth")}

    # 3. The grant is restored: the next run resumes where the last one stopped and completes.
    sim.restore_tokens()
    while runs[-1].status != SyncRun.Status.COMPLETED and len(runs) < 10:
        clock(3600)
        pull_with()
    drain()

    rows = Counter(QueueItem.objects.values_list("object_id", "version"))
    duplicated = {key: count for key, count in rows.items() if count > 1}
    stored = Invoice.objects.filter(zoho_id__in=[i["invoice_id"] for i in invoices]).count()
    fetched = sum(run.fetched for run in runs)
    summary = (
        f"runs {[(r.status, r.fetched, r.queued, r.error[:80]) for r in runs]}; sent by Zoho {len(invoices)}, fetched {fetched}, "
        f"queued {sum(rows.values())} rows, duplicated {len(duplicated)}, stored {stored}, "
        f"lost {len(invoices) - stored}; seen while waiting in the 5xx outage {outage}, "
        f"with the grant revoked {revoked}; Zoho calls in the 5xx outage {calls_in_outage}"
    )
    assert all(run.status in STOPPED for run in runs[:first_after_outage]), summary
    assert outage.get("OPEN") and outage.get("breaker_open"), summary
    # Four runs through the outage call Zoho a bounded number of times, the breaker holding them back.
    assert calls_in_outage <= 40, f"{calls_in_outage} calls in the outage; {summary}"
    assert runs[revoked_run].status in STOPPED, summary
    assert (revoked["state after"], revoked["zoho_auth after"]) == ("AUTH", 1), summary
    assert runs[-1].status == SyncRun.Status.COMPLETED, summary
    assert duplicated == {} and stored == len(invoices), summary
    # Resumed, not restarted: each object was read from Zoho once over all the runs.
    assert fetched == len(invoices), summary
    for _ in range(config.get(ALERT_CLEAR_EVALUATIONS) + 1):  # the minutes' rounds with Zoho working
        clock(60)
        engine.evaluate(timezone.now())
    assert open_alerts("zoho_auth") == open_alerts("breaker_open") == 0, summary
