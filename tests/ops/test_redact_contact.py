"""Erasure: after `redact_contact`, none of a contact's personal values is anywhere we keep data.

The contact reaches us as Zoho would send it: a webhook of the contact (an older version archived by
`cleanup --archive` and deleted), a newer one, an invoice that copies its name and address, a body that
fails validation into a dead letter, a log line, an alert excerpt and an admin history entry naming it.
The search afterwards does not ask the erasure where it wrote: it reads every text, JSON and binary
column of every table the database has, and every archive file.
"""

from __future__ import annotations

import gzip
import io
import json
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from erp.models import Customer, Invoice
from sync import worker
from sync.models import AuditTrail, ErasedContact, InboxEvent
from tdscore.models import OperatorAction
from tests import factories
from tests.conftest import ON_POSTGRES
from tests.webhooks.conftest import TOKENS, deliver, sample

pytestmark = pytest.mark.django_db

CONTACT_ID = "460000000077001"
OLD_NAME, NAME = "Zephyrine Old-Surname", "Zephyrine Quillfeather"
EMAIL, OLD_EMAIL = "zephyrine.quill@example.net", "zq.1999@example.org"
PHONE, MOBILE = "+44 20 7946 0321", "+44 7700 900461"
STREET = "17 Lantern Yard Mews"
PERSONAL = [OLD_NAME, NAME, EMAIL, OLD_EMAIL, PHONE, MOBILE, STREET, "Quillfeather", "Zephyrine"]


def contact(name: str, email: str, modified: str) -> dict:
    body = sample("books-contact")
    obj = body.get("contact", body)
    first, last = name.split(" ", 1)
    obj.update(
        contact_id=CONTACT_ID,
        contact_name=name,
        company_name="",
        first_name=first,
        last_name=last,
        email=email,
        phone=PHONE,
        mobile=MOBILE,
        contact_type="customer",
        last_modified_time=modified,
        contact_persons=[{"contact_person_id": "1", "first_name": first, "last_name": last, "email": email}],
    )
    obj["billing_address"] = {**obj["billing_address"], "address": STREET, "attention": name, "zip": "EC1A 9ZZ"}
    return {"contact": obj}


def invoice(modified: str) -> dict:
    body = sample("books-invoice")
    obj = body.get("invoice", body)
    obj.update(
        invoice_id="460000000088001",
        customer_id=CONTACT_ID,
        customer_name=NAME,
        email=EMAIL,
        last_modified_time=modified,
        billing_address={"address": STREET, "city": "London", "zip": "EC1A 9ZZ", "attention": NAME},
    )
    return {"invoice": obj}


def drain() -> None:
    worker.drain(None, worker_id="test-drainer", once=True)


def found_in_database(value: str) -> list[str]:
    """Every `table.column` holding `value`, read straight from the database's own catalogue."""
    places = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                kind = connection.introspection.get_field_type(column.type_code, column)
                name = connection.ops.quote_name(column.name)
                if kind == "BinaryField":
                    where = f"position(%s::bytea in {name}) > 0" if ON_POSTGRES else f"instr({name}, %s) > 0"
                    params = [value.encode()]
                elif kind in ("CharField", "TextField", "JSONField"):
                    where, params = f"CAST({name} AS TEXT) LIKE %s", [f"%{value}%"]
                else:
                    continue
                cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)} WHERE {where}", params)
                if cursor.fetchone()[0]:
                    places.append(f"{table}.{column.name}")
    return places


def found_in_archives(directory: Path, value: str) -> list[str]:
    places = []
    for path in directory.glob("*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            text = lines.read()
        if value in text or json.dumps(value)[1:-1] in text:
            places.append(path.name)
    return places


@pytest.fixture
def known_contact(client, settings, tmp_path, staff_user):
    """The contact everywhere data is kept; the archive directory `cleanup --archive` wrote to."""
    settings.TDS_WEBHOOK_TOKEN = TOKENS
    archive = tmp_path / "archive"
    deliver(client, "customers", contact(OLD_NAME, OLD_EMAIL, "2026-01-05T10:00:00+0000"))
    drain()
    with time_machine.travel(timezone.now() + timedelta(days=10)):
        call_command("cleanup", "--archive", str(archive), stdout=io.StringIO())
    assert found_in_archives(archive, OLD_NAME), "the old body was archived"
    deliver(client, "customers", contact(NAME, EMAIL, "2026-02-05T10:00:00+0000"))
    deliver(client, "invoices", invoice("2026-02-06T10:00:00+0000"))
    bad = invoice("not a time")
    bad["invoice"]["invoice_id"] = "460000000088002"
    deliver(client, "invoices", bad)
    drain()
    factories.sync_log(message=f"applied customer {NAME} <{EMAIL}>")
    factories.alert(detail=f"customer {CONTACT_ID}: payload excerpt {{'contact_name': '{NAME}'}}")
    LogEntry.objects.create(
        user=staff_user,
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(Customer.objects.get(zoho_id=CONTACT_ID).pk),
        object_repr=NAME,
        action_flag=CHANGE,
    )
    for value in (NAME, EMAIL, STREET):
        assert found_in_database(value), f"{value} was stored before the erasure"
    return archive


def test_after_redact_contact_no_personal_value_is_left_in_the_database_or_the_archives(known_contact, capsys):
    before = Invoice.objects.values("invoice_number", "total", "customer_id").get(zoho_id="460000000088001")

    call_command("redact_contact", "--zoho-id", CONTACT_ID, "--archive", str(known_contact))

    leftovers = {value: found_in_database(value) + found_in_archives(known_contact, value) for value in PERSONAL}
    assert {value: places for value, places in leftovers.items() if places} == {}
    customer = Customer.objects.get(zoho_id=CONTACT_ID)
    assert (customer.contact_name, customer.email, customer.phone) == ("[redacted]",) * 3
    assert Invoice.objects.get(zoho_id="460000000088001").raw["customer_name"] == "[redacted]"
    # What is not personal stays: the invoice's number, amounts and customer reference.
    assert Invoice.objects.values("invoice_number", "total", "customer_id").get(zoho_id="460000000088001") == before
    output = capsys.readouterr().out
    assert f"erased contact {CONTACT_ID}" in output and "tds_inbox_events" in output


def test_the_erasure_is_audited_and_logged_by_name_of_field_never_of_value(known_contact):
    call_command("redact_contact", "--zoho-id", CONTACT_ID, "--archive", str(known_contact))

    record = AuditTrail.objects.get(operation=AuditTrail.Operation.REDACT)
    assert (record.entity, record.object_id) == ("customers", CONTACT_ID)
    assert {"contact_name", "email", "phone", "address"} <= set(record.changed_fields)
    assert record.actor.endswith(f"@{socket.gethostname()}")
    action = OperatorAction.objects.get(action="contact.redact")
    assert (action.via, action.target, action.actor) == ("command", f"contact {CONTACT_ID}", record.actor)
    assert ErasedContact.objects.get(zoho_id=CONTACT_ID).fields == record.changed_fields


def test_a_later_webhook_about_an_erased_contact_is_redacted_on_arrival(known_contact, client, settings):
    settings.TDS_CONFIG_CACHE_SECONDS = 0  # the erasure's second sweep need not wait in a test
    call_command("redact_contact", "--zoho-id", CONTACT_ID)

    deliver(client, "customers", contact(NAME, EMAIL, "2026-03-05T10:00:00+0000"))
    deliver(client, "invoices", invoice("2026-03-06T10:00:00+0000"))
    drain()

    assert [value for value in PERSONAL if found_in_database(value)] == []
    latest = InboxEvent.objects.filter(object_id=CONTACT_ID).latest("pk")
    assert json.loads(bytes(latest.raw_body))["contact"]["email"] == "[redacted]"
    assert Customer.objects.get(zoho_id=CONTACT_ID).zoho_last_modified.month == 3


def test_an_unknown_contact_is_a_clear_error_and_changes_nothing():
    with pytest.raises(CommandError, match="no contact with Zoho id '999'"):
        call_command("redact_contact", "--zoho-id", "999")
    assert not ErasedContact.objects.exists()


@pytest.mark.postgres
def test_the_audit_trail_still_refuses_every_other_update_after_an_erasure(known_contact):
    call_command("redact_contact", "--zoho-id", CONTACT_ID, "--archive", str(known_contact))
    row = AuditTrail.objects.filter(object_id=CONTACT_ID).exclude(operation=AuditTrail.Operation.REDACT).first()

    for change in ({"after": {"contact_name": "someone"}}, {"object_id": "1"}):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditTrail.objects.filter(pk=row.pk).update(**change)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditTrail.objects.filter(pk=row.pk).delete()


def test_the_admin_asks_for_confirmation_before_it_erases(known_contact, client, staff_user, settings):
    settings.TDS_CONFIG_CACHE_SECONDS = 0
    client.force_login(staff_user)
    customer = Customer.objects.get(zoho_id=CONTACT_ID)
    url = reverse("admin:erp_customer_changelist")
    chosen = {"action": "erase_personal_data", ACTION_CHECKBOX_NAME: [customer.pk]}

    page = client.post(url, chosen)

    assert page.status_code == 200 and b"This cannot be undone" in page.content
    assert found_in_database(NAME) and not ErasedContact.objects.exists()

    done = client.post(url, {**chosen, "post": "yes"}, follow=True)

    assert f"Erased {CONTACT_ID}" in done.content.decode()
    assert [value for value in (NAME, EMAIL, PHONE, STREET) if found_in_database(value)] == []
    action = OperatorAction.objects.get(action="contact.redact")
    assert (action.actor, action.via, action.user) == (staff_user.username, "admin", staff_user)
    # Django's own history of the customer's page says so too.
    logged = LogEntry.objects.filter(object_id=str(customer.pk), user=staff_user).latest("action_time")
    assert logged.change_message == f"contact.redact via admin: contact {CONTACT_ID}"


def test_a_viewer_is_not_offered_the_erasure_and_cannot_post_it(known_contact, client, viewer):
    client.force_login(viewer)
    customer = Customer.objects.get(zoho_id=CONTACT_ID)
    url = reverse("admin:erp_customer_changelist")

    assert b"erase_personal_data" not in client.get(url).content
    client.post(url, {"action": "erase_personal_data", ACTION_CHECKBOX_NAME: [customer.pk], "post": "yes"})

    assert found_in_database(NAME) and not ErasedContact.objects.exists()
