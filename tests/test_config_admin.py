"""Configuration in the admin: each key with what it means, its type, default and range, edited with a
widget that fits its type, and a wrong value refused with the reason."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from alerts.config_keys import FAILURE_RATE_THRESHOLD
from sync.config_keys import (
    BATCH_SIZE,
    HEAL_REDRIVE_LADDER_MINUTES,
    PAUSED_ENTITIES,
    RECONCILIATION_ENABLED,
    RECONCILIATION_SCHEDULE_CRON,
)
from tdscore import config
from tdscore.models import Configuration

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def page_of(key: config.Key) -> str:
    return reverse("admin:tdscore_configuration_change", args=[Configuration.objects.get(key=key.name).pk])


def save(client, key: config.Key, value):
    data = {"value": value} if not isinstance(value, list) else {"value": value}
    return client.post(page_of(key), data)


def test_the_page_says_what_the_key_is_its_type_default_and_range(admin_client):
    html = admin_client.get(page_of(BATCH_SIZE)).content.decode()
    assert "Queue rows a worker claims and applies at once." in html
    assert re.search(r'<input type="number" name="value" value="100"[^>]*min="1"[^>]*max="5000"', html), html
    assert ">int<" in html and ">100<" in html and "1 to 5,000" in html


def test_a_number_in_range_is_stored_and_one_out_of_range_is_refused_with_the_reason(admin_client):
    assert save(admin_client, BATCH_SIZE, "250").status_code == 302
    assert config.get(BATCH_SIZE) == 250
    refused = save(admin_client, BATCH_SIZE, "9000")
    assert refused.status_code == 200 and "batch_size: 9000 is above the maximum 5000" in refused.content.decode()
    assert config.get(BATCH_SIZE) == 250


def test_a_fraction_takes_a_decimal(admin_client):
    assert save(admin_client, FAILURE_RATE_THRESHOLD, "0.2").status_code == 302
    assert config.get(FAILURE_RATE_THRESHOLD) == 0.2
    assert "-1.0 is below the minimum 0" in save(admin_client, FAILURE_RATE_THRESHOLD, "-1").content.decode()


def test_a_switch_turns_a_flag_off_and_on(admin_client):
    html = admin_client.get(page_of(RECONCILIATION_ENABLED)).content.decode()
    assert re.search(r'<input type="checkbox" name="value"[^>]*checked', html)
    assert admin_client.post(page_of(RECONCILIATION_ENABLED), {}).status_code == 302  # unticked
    assert config.get(RECONCILIATION_ENABLED) is False
    assert save(admin_client, RECONCILIATION_ENABLED, "on").status_code == 302
    assert config.get(RECONCILIATION_ENABLED) is True


def test_a_cron_key_shows_its_next_runs_and_refuses_a_bad_expression(admin_client, settings):
    settings.TIME_ZONE = "UTC"
    html = admin_client.get(page_of(RECONCILIATION_SCHEDULE_CRON)).content.decode()
    assert re.search(r"next runs.*?\w{3} \d{4}-\d\d-\d\d 02:00 UTC, \w{3} \d{4}-\d\d-\d\d 02:00 UTC", html, re.S | re.I)
    refused = save(admin_client, RECONCILIATION_SCHEDULE_CRON, "0 25 * * *").content.decode()
    assert "is not a valid cron expression" in refused
    assert save(admin_client, RECONCILIATION_SCHEDULE_CRON, "30 1 * * *").status_code == 302
    assert config.get(RECONCILIATION_SCHEDULE_CRON) == "30 1 * * *"


def test_entities_are_ticked_from_a_list_and_an_unknown_one_is_refused(admin_client):
    html = admin_client.get(page_of(PAUSED_ENTITIES)).content.decode()
    assert html.count('type="checkbox" name="value"') == 11
    assert save(admin_client, PAUSED_ENTITIES, ["stock", "invoices"]).status_code == 302
    assert config.get(PAUSED_ENTITIES) == ["invoices", "stock"]
    assert "is not one of the available choices" in save(admin_client, PAUSED_ENTITIES, ["widgets"]).content.decode()


def test_a_list_of_numbers_is_typed_with_commas_and_each_is_checked(admin_client):
    html = admin_client.get(page_of(HEAL_REDRIVE_LADDER_MINUTES)).content.decode()
    assert 'value="15, 60, 360, 1440"' in html
    assert save(admin_client, HEAL_REDRIVE_LADDER_MINUTES, "10, 30").status_code == 302
    assert config.get(HEAL_REDRIVE_LADDER_MINUTES) == [10, 30]
    refused = save(admin_client, HEAL_REDRIVE_LADDER_MINUTES, "10, 0").content.decode()
    assert "0 is below the minimum 1" in refused
