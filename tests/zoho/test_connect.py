"""`zoho_connect --code`: onboarding with a self-client grant code, against the simulator over HTTP."""

from __future__ import annotations

from io import StringIO
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from sync.zoho import breaker
from sync.zoho.client import ZohoClient, stored_refresh_token
from sync.zoho.connect import connect
from sync.zoho.models import ZohoToken
from tests import factories
from tests.webhooks.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def unconnected(zoho_sim, settings):
    """The simulator with credentials but no ZOHO_REFRESH_TOKEN: what a new deployment has."""
    settings.ZOHO_REFRESH_TOKEN = ""
    return zoho_sim


def run(code: str) -> str:
    out = StringIO()
    call_command("zoho_connect", "--code", code, stdout=out)
    return out.getvalue()


def test_a_good_code_stores_the_refresh_token_and_lists_the_organisations(unconnected, settings):
    output = run(unconnected.grant_code())

    assert unconnected.organization_id in output and "ZOHO_ORGANIZATION_ID" in output
    row = ZohoToken.objects.get(connected_at__isnull=False)
    assert row.refresh_token and row.api_domain == unconnected.url
    # The client now calls Zoho with it, ZOHO_REFRESH_TOKEN still unset.
    item = unconnected.seed("products", 1)[0]
    with ZohoClient() as zoho:
        assert zoho.get("products", item["item_id"])["item_id"] == item["item_id"]


def test_a_used_code_is_refused_with_what_to_do(unconnected):
    code = unconnected.grant_code()
    run(code)
    with pytest.raises(CommandError, match="used or expired"):
        run(code)


def test_an_expired_code_is_refused_with_what_to_do(unconnected):
    code = unconnected.grant_code(ttl_seconds=180)
    unconnected.advance(181)
    with pytest.raises(CommandError, match="used or expired"):
        run(code)
    assert not ZohoToken.objects.filter(connected_at__isnull=False).exists()


def test_a_client_of_another_data_centre_is_refused_naming_zoho_dc(unconnected, settings):
    settings.ZOHO_CLIENT_ID = "1000.CREATED-IN-ANOTHER-DC"
    with pytest.raises(CommandError, match="ZOHO_DC"):
        run(unconnected.grant_code())


def test_a_code_without_the_books_scope_says_which_scopes_to_grant(unconnected):
    with pytest.raises(CommandError, match="scope is missing.*ZohoBooks"):
        run(unconnected.grant_code(scope="ZohoInventory.items.READ"))


def test_zoho_refresh_token_still_wins_over_the_stored_one(zoho_sim, settings):
    connect(zoho_sim.grant_code(), now=timezone.now(), actor=factories.actor())
    settings.ZOHO_REFRESH_TOKEN = "sim-refresh"
    item = zoho_sim.seed("products", 1)[0]
    with ZohoClient() as zoho:
        zoho.get("products", item["item_id"])
        assert zoho._credentials["refresh_token"] == "sim-refresh"


def test_the_stored_tokens_are_unreadable_in_the_database_without_the_key(unconnected, settings):
    connect(unconnected.grant_code(), now=timezone.now(), actor=factories.actor())
    plain = stored_refresh_token()
    with connection.cursor() as cursor:
        cursor.execute("SELECT refresh_token, access_token FROM tds_zoho_tokens WHERE connected_at IS NOT NULL")
        refresh_column, access_column = cursor.fetchone()
    assert plain and plain not in refresh_column and "1000." not in refresh_column + access_column
    settings.TDS_ENCRYPTION_KEY = [Fernet.generate_key().decode()]  # another deployment's key
    assert stored_refresh_token() == ""


def test_a_rotated_key_list_still_reads_tokens_the_old_key_wrote(unconnected, settings):
    settings.TDS_ENCRYPTION_KEY = ["old-passphrase"]
    connect(unconnected.grant_code(), now=timezone.now(), actor=factories.actor())
    plain = stored_refresh_token()
    settings.TDS_ENCRYPTION_KEY = [Fernet.generate_key().decode(), "old-passphrase"]
    assert stored_refresh_token() == plain


def test_connecting_lifts_an_auth_state_the_old_credentials_left(unconnected):
    breaker.enter_auth("refresh token revoked", timezone.now())
    run(unconnected.grant_code())
    assert breaker.state(timezone.now()) == breaker.Circuit.CLOSED


def grant_code_from_the_running_simulator(sim) -> str:
    out, err = StringIO(), StringIO()
    call_command("zoho_simulator", "--grant-code", "--port", str(urlsplit(sim.url).port), stdout=out, stderr=err)
    assert "zoho_connect --code" in err.getvalue()
    return out.getvalue().strip()


def test_zoho_connect_is_rehearsed_with_a_code_the_simulator_prints(unconnected):
    output = run(grant_code_from_the_running_simulator(unconnected))

    assert unconnected.organization_id in output
    assert ZohoToken.objects.filter(connected_at__isnull=False).exists()
    item = unconnected.seed("products", 1)[0]
    with ZohoClient() as zoho:
        assert zoho.get("products", item["item_id"])["item_id"] == item["item_id"]


def test_the_simulator_gives_a_grant_code_only_to_the_clients_owner(unconnected, settings):
    settings.ZOHO_CLIENT_SECRET = "not-the-secret"
    with pytest.raises(CommandError, match="invalid_client"):
        grant_code_from_the_running_simulator(unconnected)


def test_asking_for_a_grant_code_with_no_simulator_running_says_how_to_start_one():
    with pytest.raises(CommandError, match="start it with `zoho_simulator`"):
        call_command("zoho_simulator", "--grant-code", "--port", str(free_port()), stdout=StringIO())
