"""The data model as the database holds it: table names and uniqueness the database enforces."""

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from erp.models import ZohoRecord
from sync.models import InboxEvent

pytestmark = pytest.mark.django_db

SPEC_TABLES = {
    "tds_inbox_events",
    "tds_sync_queue",
    "tds_sync_runs",
    "tds_sync_logs",
    "tds_dead_letter_queue",
    "tds_sync_cursors",
    "tds_audit_trail",
    "tds_alerts",
    "tds_metrics",
    "tds_configuration",
}
ERP_MODELS = [m for m in apps.get_app_config("erp").get_models() if issubclass(m, ZohoRecord)]


def test_the_ten_spec_tables_exist_with_their_exact_names():
    assert SPEC_TABLES - set(connection.introspection.table_names()) == set()


def test_every_table_of_ours_is_prefixed_tds():
    ours = [
        m._meta.db_table for app in ("tdscore", "sync", "alerts", "zoho") for m in apps.get_app_config(app).get_models()
    ]
    assert [table for table in ours if not table.startswith("tds_")] == []


def insert_inbox_row(idempotency_key: str) -> None:
    InboxEvent.objects.create(
        entity="products",
        source=InboxEvent.Source.TOKEN,
        method="POST",
        raw_body=b"{}",
        idempotency_key=idempotency_key,
        content_hash="0" * 64,
    )


def test_the_database_refuses_a_second_inbox_row_with_the_same_idempotency_key():
    insert_inbox_row("products:1:abc")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_inbox_row("products:1:abc")
    assert InboxEvent.objects.count() == 1


@pytest.mark.parametrize("model", ERP_MODELS, ids=lambda m: m.__name__)
def test_the_database_refuses_a_second_erp_row_with_the_same_zoho_id(model):
    # Every other column has a default or is nullable: only the Zoho id and sync time are needed.
    row = {"zoho_id": "4815000000044208", "synced_at": timezone.now()}
    model.objects.create(**row)
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.create(**row)
    assert model.objects.filter(zoho_id="4815000000044208").count() == 1
