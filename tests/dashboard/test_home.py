"""`/`, the address `make run` prints, and the icon every browser asks for."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db


def test_an_operator_at_the_root_goes_to_the_dashboard(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:index")


def test_an_anonymous_visitor_at_the_root_goes_to_the_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "next=/dashboard/" in response["Location"]


def test_a_signed_in_user_who_is_not_staff_goes_to_the_login(client):
    client.force_login(factories.user("clerk"))
    response = client.get("/")
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_favicon_is_answered_not_a_404(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert b"<svg" in b"".join(response.streaming_content)


def test_the_pages_link_the_icon(client, staff_user):
    client.force_login(staff_user)
    for path in (reverse("dashboard:index"), reverse("admin:index")):
        assert 'rel="icon"' in client.get(path).content.decode(), path
