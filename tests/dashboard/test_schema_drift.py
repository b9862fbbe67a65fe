"""Schema drift as an operator meets it: webhooks carrying a new Zoho field, the drain, one row, one
info alert; the list in the API, acknowledging by the API and the admin, and the alert resolving."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import engine
from alerts.config_keys import ALERT_CLEAR_EVALUATIONS
from alerts.models import Alert
from sync import schema_drift, worker
from sync.models import SchemaDrift
from tdscore import config
from tdscore.actions import Actor, Via
from tdscore.enums import Action
from tdscore.models import OperatorAction
from tests import factories

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).resolve().parents[2] / "zohosim" / "samples"
TOKEN = "drift-token"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _token(settings):
    settings.TDS_WEBHOOK_TOKEN = [TOKEN]


def deliver(client, invoice_id: str, **extra) -> None:
    body = json.loads((SAMPLES / "books-invoice.json").read_text())
    body["invoice"] |= {"invoice_id": invoice_id, "last_modified_time": "2026-12-01T10:00:00+0000", **extra}
    answer = client.post(
        "/webhooks/invoices", json.dumps(body), content_type="application/json", HTTP_X_TDS_TOKEN=TOKEN
    )
    assert answer.status_code == 202


def drain() -> None:
    while worker.process_batch("test-drainer", timezone.now()):
        pass


def test_a_new_zoho_field_is_one_row_and_one_alert_however_often_it_arrives(client):
    for n in range(4):
        deliver(client, f"90{n}", loyalty_tier="gold")
        drain()
    engine.evaluate(NOW)
    engine.evaluate(NOW + timedelta(minutes=1))

    [row] = SchemaDrift.objects.all()
    assert (row.entity, row.path, row.count, row.example_object_id) == ("invoices", "loyalty_tier", 4, "900")
    [alert] = Alert.objects.filter(rule="schema_drift")
    assert (alert.severity, alert.status, alert.occurrences) == ("info", "open", 2)
    assert "invoices: loyalty_tier" in alert.title
    assert alert.context["paths"] == {"invoices": ["loyalty_tier"]}


def test_the_alert_resolves_once_every_field_is_acknowledged(staff_user):
    config.update(ALERT_CLEAR_EVALUATIONS, 1)
    first, second = factories.schema_drift(path="loyalty_tier"), factories.schema_drift("bills", "carbon_kg")
    engine.evaluate(NOW)
    api = APIClient()
    api.force_authenticate(staff_user)
    api.post(reverse("api:schema-drift-acknowledge", args=[first.pk]))
    engine.evaluate(NOW + timedelta(minutes=1))
    alert = Alert.objects.get(rule="schema_drift")
    assert alert.status == "open" and "bills: carbon_kg" in alert.title and "loyalty_tier" not in alert.title

    api.post(reverse("api:schema-drift-acknowledge", args=[second.pk]))
    engine.evaluate(NOW + timedelta(minutes=2))
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_the_api_lists_drift_filtered_by_entity_and_acknowledged(api_client):
    factories.schema_drift("invoices", "loyalty_tier", count=7)
    factories.schema_drift("bills", "carbon_kg", acknowledged_at=NOW, acknowledged_by="ana")

    everything = api_client.get(reverse("api:schema-drift")).json()
    new = api_client.get(reverse("api:schema-drift"), {"acknowledged": "false"}).json()
    bills = api_client.get(reverse("api:schema-drift"), {"entity": "bills"}).json()

    assert everything["count"] == 2
    [row] = new["results"]
    assert {k: row[k] for k in ("entity", "path", "count", "example_object_id", "acknowledged")} == {
        "entity": "invoices",
        "path": "loyalty_tier",
        "count": 7,
        "example_object_id": "1001",
        "acknowledged": False,
    }
    assert row["first_seen"] and row["last_seen"]
    assert [(r["path"], r["acknowledged"]) for r in bills["results"]] == [("carbon_kg", True)]


def test_acknowledging_by_the_api_records_who_once_and_a_second_time_is_409(api_client, staff_user):
    row = factories.schema_drift()
    url = reverse("api:schema-drift-acknowledge", args=[row.pk])

    first = api_client.post(url)
    again = api_client.post(url)

    assert first.status_code == 200 and first.json()["acknowledged"] is True
    assert again.status_code == 409 and again.json()["error"] == "already_acknowledged"
    row.refresh_from_db()
    assert row.acknowledged_by == "operator" and row.acknowledged_at is not None
    [action] = OperatorAction.objects.filter(action=Action.DRIFT_ACKNOWLEDGE)
    assert (action.actor, action.via, action.target) == (
        "operator",
        "api",
        f"schema drift #{row.pk} invoices loyalty_tier",
    )
    assert (action.before, action.after) == ({"acknowledged": False}, {"acknowledged": True})


def test_a_viewer_may_list_drift_but_not_acknowledge_it(viewer):
    row = factories.schema_drift()
    api = APIClient()
    api.force_authenticate(viewer)
    assert api.get(reverse("api:schema-drift")).status_code == 200
    assert api.post(reverse("api:schema-drift-acknowledge", args=[row.pk])).status_code == 403
    row.refresh_from_db()
    assert row.acknowledged_at is None and not OperatorAction.objects.exists()


def test_acknowledging_in_the_admin_records_it_in_the_action_log(client, staff_user):
    rows = [factories.schema_drift(path="loyalty_tier"), factories.schema_drift(path="carbon_kg")]
    client.force_login(staff_user)
    answer = client.post(
        reverse("admin:sync_schemadrift_changelist"),
        {"action": "acknowledge_selected", "_selected_action": [str(r.pk) for r in rows]},
        follow=True,
    )
    assert "2 field(s) acknowledged." in answer.content.decode()
    assert SchemaDrift.objects.filter(acknowledged_at__isnull=True).count() == 0
    vias = set(OperatorAction.objects.filter(action=Action.DRIFT_ACKNOWLEDGE).values_list("via", flat=True))
    assert vias == {"admin"}


def test_the_dashboard_lists_new_fields_until_they_are_acknowledged(client, staff_user):
    row = factories.schema_drift("invoices", "loyalty_tier", count=12)
    client.force_login(staff_user)

    page = client.get(reverse("dashboard:index")).content.decode()
    assert 'id="schema-drift"' in page and "<code>loyalty_tier</code>" in page and "12×" in page

    schema_drift.acknowledge(row, actor=Actor.of_user(staff_user, Via.ADMIN), now=NOW)
    assert 'id="schema-drift"' not in client.get(reverse("dashboard:index")).content.decode()
