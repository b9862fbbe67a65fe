"""The admin is the operations console: every page of every registered model loads, with a row to show."""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse

from sync.models import InboxEvent
from tdscore import config
from tdscore.models import Configuration
from tests import factories

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser(django_user_model):
    # No password to hash (half a second each): the client logs in with force_login.
    return django_user_model.objects.create_superuser("root", "root@example.com", None)


@pytest.fixture
def operator(client, superuser):
    client.force_login(superuser)
    return client


def build_row(model):
    build = factories.ADMIN_ROWS.get(model)
    assert build, f"no builder for {model._meta.label}: add one to tests/factories.py with @builds({model.__name__})"
    return build()


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_changelist_and_change_page_load_with_a_row(operator, model):
    row = build_row(model)

    changelist = operator.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count >= 1
    change = operator.get(admin_url(model, "change", quote(row.pk)))
    assert change.status_code == 200


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_changelist_search_answers(operator, model):
    build_row(model)
    model_admin = admin.site._registry[model]
    params = {"q": "1"} if model_admin.search_fields else {}
    assert operator.get(admin_url(model, "changelist"), params).status_code == 200


def test_inbox_rows_cannot_be_edited_or_deleted(operator):
    row = factories.inbox_event()
    page = operator.get(admin_url(InboxEvent, "change", row.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert operator.post(admin_url(InboxEvent, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert InboxEvent.objects.filter(pk=row.pk).exists()


def test_non_staff_users_are_sent_to_the_login(client, django_user_model):
    client.force_login(factories.user("clerk"))
    response = client.get(admin_url(Configuration, "changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def edit_configuration(client, key: str, value: str):
    row = Configuration.objects.get(key=key)
    return client.post(admin_url(Configuration, "change", row.pk), {"value": value})


def test_a_bad_configuration_value_shows_the_error_and_changes_nothing(operator):
    response = edit_configuration(operator, "batch_size", "0")
    assert response.status_code == 200
    assert "batch_size: 0 is below the minimum 1" in response.content.decode()
    assert config.get("batch_size") == 100


def test_a_configuration_value_of_the_wrong_type_is_refused(operator):
    response = edit_configuration(operator, "reconciliation_enabled", '"sometimes"')
    assert "expected true or false" in response.content.decode()
    assert config.get("reconciliation_enabled") is True


def test_a_good_configuration_value_is_saved_and_seen_at_once(operator, superuser):
    config.get("batch_size")  # a warm cache must not hide the change
    response = edit_configuration(operator, "batch_size", "25")
    assert response.status_code == 302
    assert config.get("batch_size") == 25
    assert Configuration.objects.get(key="batch_size").updated_by == superuser


def test_the_console_is_branded_and_lists_the_sync_tables(operator):
    page = operator.get(reverse("admin:index")).content.decode()
    assert "TDS Core operations console" in page
    assert "Inbox events" in page
