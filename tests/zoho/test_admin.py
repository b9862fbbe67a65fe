"""The breaker's reset, as an operator does it in the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from sync.zoho import breaker
from sync.zoho.models import BreakerState

pytestmark = pytest.mark.django_db


def test_admin_reset_lifts_the_auth_state(client, superuser, settings):
    settings.ZOHO_ORGANIZATION_ID = "60012345"
    breaker.enter_auth("refresh refused: invalid_code", timezone.now())
    row = BreakerState.objects.get()
    client.force_login(superuser)
    url = reverse("admin:zoho_breakerstate_changelist")
    response = client.post(url, {"action": "reset_breaker", "_selected_action": [str(row.pk)]}, follow=True)
    assert response.status_code == 200
    assert breaker.state(timezone.now()) == "closed"
    assert BreakerState.objects.get().last_failure == "reset by root"


def test_the_token_admin_never_shows_the_access_token(client, superuser):
    from sync.zoho.models import ZohoToken

    token = ZohoToken.objects.create(account="a" * 64, access_token="1000.secret.token", expires_at=timezone.now())
    client.force_login(superuser)
    page = client.get(reverse("admin:zoho_zohotoken_change", args=[token.pk]))
    assert page.status_code == 200 and b"1000.secret.token" not in page.content
