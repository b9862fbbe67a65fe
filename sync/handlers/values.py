"""Zoho values as ERP column values.

Zoho sends `""` for "no value", numbers as JSON numbers or strings, and ids as strings (or as
numbers past 2**53 in its doc examples). A value of the wrong shape fails the row (ValidationFailed)
rather than storing a guess; a text longer than its column is cut, the full text stays in `raw`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models

from sync.errors import ValidationFailed

Convert = Callable[[Any], Any]
# erp.models.money(): 20 digits, 6 of them decimals. A larger amount is refused here, as a bad
# payload, rather than by the database as an error the queue would retry.
INTEGER_DIGITS = 14


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def money(value: Any) -> Decimal | None:
    if _blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationFailed(f"not a number: {value!r}")
    if isinstance(value, str) and value.strip().endswith("%"):
        # Zoho writes some discounts as "12.5%": a rate, not an amount, so the amount is unknown.
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationFailed(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValidationFailed(f"not a finite number: {value!r}")
    if number and number.adjusted() >= INTEGER_DIGITS:
        raise ValidationFailed(f"number out of range: {value!r}")
    return number


def day(value: Any) -> date | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"not a date: {value!r}")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise ValidationFailed(f"not a date: {value!r}") from None


def ident(value: Any, max_length: int = 100) -> str:
    if _blank(value):
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationFailed(f"not an id: {value!r}")
    text = str(value).strip()
    if len(text) > max_length:  # cutting an id would point it at another object
        raise ValidationFailed(f"id longer than {max_length}: {text[:40]}…")
    return text


def text(max_length: int | None) -> Convert:
    def convert(value: Any) -> str:
        if type(value) is str:  # most values, one test: this runs for most columns of every row
            return value[:max_length] if value.strip() else ""
        if _blank(value):
            return ""
        if isinstance(value, dict | list):
            raise ValidationFailed(f"not text: {value!r}"[:200])
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)[:max_length] if max_length else str(value)

    return convert


def custom_fields(value: Any) -> dict[str, Any]:
    """Zoho's custom fields as `api_name` → value.

    Details list them (`custom_fields: [{"api_name": "cf_region", "value": "North", …}]`); list
    rows and some webhooks map them (`custom_field_hash: {"cf_region": "North",
    "cf_region_unformatted": "North"}`). The raw value wins over the display value in both.
    """
    if _blank(value):
        return {}
    if isinstance(value, list):
        out = {}
        for field in value:
            if not isinstance(field, dict):
                raise ValidationFailed(f"custom_fields holds a non-object: {field!r}"[:200])
            name = field.get("api_name") or field.get("placeholder")
            if isinstance(name, str) and name:
                out[name] = field.get("value")
        return out
    if isinstance(value, dict):
        suffix = "_unformatted"
        return {k: value.get(k + suffix, v) for k, v in value.items() if not k.endswith(suffix)}
    raise ValidationFailed(f"custom fields are neither a list nor an object: {value!r}"[:200])


def for_field(field: models.Field) -> Convert:
    """The converter a column needs, from its type: the declarations name fields, not converters."""
    if isinstance(field, models.JSONField) and field.name == "custom_fields":
        return custom_fields
    if isinstance(field, models.DecimalField):
        return money
    if isinstance(field, models.DateField):
        return day
    if isinstance(field, models.CharField) and field.name.endswith("_id"):
        return lambda value: ident(value, field.max_length)
    if isinstance(field, models.CharField | models.TextField):
        return text(field.max_length)
    raise TypeError(f"no Zoho converter for {field!r}")
