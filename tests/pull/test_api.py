from __future__ import annotations

import pytest
from django.utils import timezone
from django_q.models import OrmQ
from rest_framework.test import APIClient

from sync import pull, tasks
from sync.models import SyncRun

from .conftest import drain

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_is_401_and_non_staff_403(django_user_model):
    anonymous = APIClient()
    member = APIClient()
    member.force_authenticate(django_user_model.objects.create_user("clerk", password="pw"))

    for path in ("/api/dashboard/runs", "/api/dashboard/cursors"):
        assert anonymous.get(path).status_code == 401
        assert member.get(path).status_code == 403
    assert anonymous.post("/api/dashboard/sync", {"entity": "products"}, format="json").status_code == 401
    assert member.post("/api/dashboard/sync", {"entity": "products"}, format="json").status_code == 403


def test_sync_starts_a_run_in_the_cluster_and_answers_202(sim, api_client):
    sim.seed("products", 5)

    answer = api_client.post("/api/dashboard/sync", {"entity": "products", "mode": "full"}, format="json")

    assert answer.status_code == 202, answer.json()
    (run_id,) = answer.json()["run_ids"]
    assert SyncRun.objects.get(pk=run_id).status == SyncRun.Status.PENDING
    assert OrmQ.objects.count() == 1  # the cluster runs it: here we play the cluster
    assert tasks.pull_task(run_id) == SyncRun.Status.COMPLETED
    assert SyncRun.objects.get(pk=run_id).queued == 5


def test_sync_while_a_run_is_active_is_409_with_the_reason(sim, api_client):
    pull.start_run("products", "full", now=timezone.now(), trigger="schedule")

    answer = api_client.post("/api/dashboard/sync", {"entity": "products", "mode": "incremental"}, format="json")

    assert answer.status_code == 409
    assert answer.json()["error"] == "refused"
    assert "overlap" in answer.json()["refused"]["products"]


def test_sync_over_the_budget_is_409(sim, api_client, settings):
    from sync.zoho.models import LimiterState

    settings.ZOHO_PLAN = "free"
    LimiterState.objects.create(
        organization_id=sim.organization_id,
        calls_today=1000,
        day_resets_at=timezone.now() + timezone.timedelta(hours=1),
    )

    answer = api_client.post("/api/dashboard/sync", {"entity": "products", "mode": "full"}, format="json")

    assert answer.status_code == 409
    assert "daily budget" in answer.json()["detail"]


def test_sync_of_an_unknown_entity_is_400(api_client):
    answer = api_client.post("/api/dashboard/sync", {"entity": "widgets"}, format="json")

    assert answer.status_code == 400


def test_runs_and_cursors_are_listed_newest_first_with_pagination(sim, api_client, run_pull):
    sim.seed("products", 3)
    run_pull("products", "full")
    run_pull("products", "incremental")

    runs = api_client.get("/api/dashboard/runs").json()
    cursors = api_client.get("/api/dashboard/cursors?entity=products").json()

    assert runs["count"] == 2 and [r["run_type"] for r in runs["results"]] == ["incremental", "full"]
    assert runs["results"][1]["applied"] == 0
    drain()
    assert api_client.get("/api/dashboard/runs").json()["results"][1]["applied"] == 3
    assert {c["run_type"] for c in cursors["results"]} == {"full", "incremental"}
    assert api_client.get("/api/dashboard/runs?status=failed").json()["count"] == 0


def test_sync_starts_a_reconciliation_when_asked(sim, api_client):
    answer = api_client.post("/api/dashboard/sync", {"entity": "products", "mode": "reconciliation"}, format="json")

    assert answer.status_code == 202, answer.json()
    (run_id,) = answer.json()["run_ids"]
    assert SyncRun.objects.get(pk=run_id).run_type == SyncRun.RunType.RECONCILIATION
    assert OrmQ.objects.get().func() == "sync.tasks.reconcile_task"
