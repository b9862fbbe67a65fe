"""bench/soak.py --smoke: the soak's processes (gunicorn, a qcluster of two drainers, the simulator)
on a private PostgreSQL cluster for some fifteen seconds of webhooks, each fault of the hour's
rotation once: a drainer killed with -9 and replaced, PostgreSQL stopped and started again, a burst
of Zoho 5xx under a pull. Nothing answered 2xx is lost, nothing is applied twice, and every fault
happened (the bench counts them), so the hour's bench cannot rot between its runs."""

from __future__ import annotations

import json

import pytest

from tests.benches import run_smoke
from tests.infra.private_postgres import installed_initdb

pytestmark = pytest.mark.postgres

FAULTS = ("drainer killed", "drainer replaced", "postgres restarted", "zoho 5xx burst")


def test_the_soak_smoke_loses_and_doubles_nothing_through_each_fault():
    if not installed_initdb():
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed: no private cluster")
    printed = run_smoke("soak.py", "--json", timeout=150)
    result = json.loads(printed.strip().splitlines()[-1])
    counts = {key: result[key] for key in ("sent", "answered_2xx", "answered_503", "answered_other_5xx", "stored")}
    message = f"{counts}, applied {result['applied']}, lost {result['lost']}, twice {result['double_applies']}; " + (
        "; ".join(result["story"])
    )
    assert result["lost"] == 0 and result["double_applies"] == 0, message
    assert result["answered_other_5xx"] == 0, message
    assert all(result["faults"].get(fault) for fault in FAULTS), f"faults {result['faults']}; {message}"
