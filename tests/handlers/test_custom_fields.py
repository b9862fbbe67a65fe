"""Zoho's custom fields land as `api_name` → value on every header model."""

from __future__ import annotations

import pytest

from erp.models import Bill, Customer, ErpUser
from sync.errors import ValidationFailed
from tests.handlers.conftest import apply, enqueue, sample


def test_a_custom_field_map_keeps_the_raw_values_not_the_display_ones():
    contact = {**sample("books-contact"), "contact_type": "customer"}
    contact.pop("custom_fields", None)
    contact["custom_field_hash"] = {"cf_tier": "Gold", "cf_tier_unformatted": "gold", "cf_since": "2024"}
    apply(enqueue("customers", contact))
    assert Customer.objects.get(zoho_id=contact["contact_id"]).custom_fields == {"cf_tier": "gold", "cf_since": "2024"}


def test_a_custom_field_list_is_read_by_api_name_and_documents_keep_the_exchange_rate():
    bill = sample("books-bill")
    bill["custom_fields"] = [
        {"api_name": "cf_cost_centre", "label": "Cost centre", "value": "CC-9", "value_formatted": "CC 9"}
    ]
    bill["exchange_rate"] = "0.9134"
    apply(enqueue("bills", bill))
    stored = Bill.objects.get(zoho_id=bill["bill_id"])
    assert stored.custom_fields == {"cf_cost_centre": "CC-9"}
    assert str(stored.exchange_rate) == "0.913400"


def test_a_record_without_custom_fields_has_none():
    user = sample("user")
    user.pop("custom_fields", None)
    apply(enqueue("users", user))
    assert ErpUser.objects.get(zoho_id=user["user_id"]).custom_fields == {}


def test_custom_fields_of_the_wrong_shape_fail_the_row():
    user = {**sample("user"), "custom_fields": "North"}
    with pytest.raises(ValidationFailed, match="custom fields"):
        apply(enqueue("users", user))
