"""GET /api/dashboard/alerts and POST …/<id>/acknowledge, …/resolve."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from alerts.models import Alert
from tests import factories

pytestmark = pytest.mark.django_db
LIST = "/api/dashboard/alerts"


def test_list_filters_by_status_severity_and_rule(api_client):
    factories.alert("dlq_size", fingerprint="a", severity=Alert.Severity.ERROR)
    factories.alert("queue_backlog", fingerprint="b", status=Alert.Status.RESOLVED)
    for params, expected in [
        ({"status": "open"}, ["dlq_size"]),
        ({"severity": "warning"}, ["queue_backlog"]),
        ({"rule": "dlq_size"}, ["dlq_size"]),
    ]:
        body = api_client.get(LIST, params).json()
        assert [row["rule"] for row in body["results"]] == expected


def test_list_is_paginated_newest_seen_first(api_client):
    for n in range(3):
        factories.alert(fingerprint=f"f{n}")
    body = api_client.get(LIST).json()
    assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 3
    assert [r["fingerprint"] for r in body["results"]] == ["f2", "f1", "f0"]


def test_acknowledge_records_who_and_when(api_client):
    alert = factories.alert()
    answer = api_client.post(f"{LIST}/{alert.pk}/acknowledge")
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["acknowledged_by"]) == ("acknowledged", "operator")
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is not None


def test_acknowledging_twice_is_409(api_client):
    alert = factories.alert(status=Alert.Status.ACKNOWLEDGED)
    answer = api_client.post(f"{LIST}/{alert.pk}/acknowledge")
    assert answer.status_code == 409
    assert answer.json()["status"] == "error" and answer.json()["error"] == "conflict"
    assert "acknowledged" in answer.json()["detail"]


def test_resolve_records_who_and_when_and_twice_is_409(api_client):
    alert = factories.alert()
    answer = api_client.post(f"{LIST}/{alert.pk}/resolve")
    assert (answer.status_code, answer.json()["resolved_by"]) == (200, "operator")
    assert api_client.post(f"{LIST}/{alert.pk}/resolve").status_code == 409


def test_unknown_alert_is_404(api_client):
    answer = api_client.post(f"{LIST}/999999/resolve")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "method,path", [("get", LIST), ("post", f"{LIST}/1/acknowledge"), ("post", f"{LIST}/1/resolve")]
)
def test_anonymous_is_401(method, path):
    assert getattr(APIClient(), method)(path).status_code == 401


@pytest.mark.parametrize(
    "method,path", [("get", LIST), ("post", f"{LIST}/1/acknowledge"), ("post", f"{LIST}/1/resolve")]
)
def test_non_staff_is_403(method, path, django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("clerk", "c@example.com", None))
    assert getattr(client, method)(path).status_code == 403


def test_token_authentication_works(staff_user):
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    assert client.get(LIST).status_code == 200


def test_schema_describes_the_alert_endpoints(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    assert {
        "/api/dashboard/alerts",
        "/api/dashboard/alerts/{id}/acknowledge",
        "/api/dashboard/alerts/{id}/resolve",
    } <= set(schema["paths"])
    acknowledge = schema["paths"]["/api/dashboard/alerts/{id}/acknowledge"]["post"]["responses"]
    assert {"200", "404", "409"} <= set(acknowledge)
    assert "Alert" in schema["components"]["schemas"]
