"""Dates PostgreSQL holds and Python cannot: loaded without failing the query.

PostgreSQL's timestamptz runs from 4713 BC to 294276 AD, plus ±infinity; Python's datetime from year
1 to 9999. psycopg raises DataError on loading anything outside, and a query that raises on one row
returns none: a single queue row with such a version (stored before the webhook refused them, or
written by hand) made every claim, lease recovery and admin list that read it fail.
Registered on every PostgreSQL connection (sync.apps), so each reader — the drain, the admin, the
API, the dashboard — still gets the row.

- A column (timestamptz) reads as None, "not known". Not the nearest bound: datetime.max would pass
  for a real version newer than every other and win every comparison the apply makes. The claim
  tells such a version from a missing one (`version_stored`, sync.queue_sql.lease) and dead-letters
  the row as `validation`.
- A derived value (timestamp, date: what Trunc() and the admin's date hierarchy make of a column)
  reads as the nearest bound. Those are only shown and grouped, and Django's admin fails on None.
"""

from __future__ import annotations

import functools
from datetime import date, datetime

import psycopg
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.types.datetime import DateLoader, TimestampLoader


def _unrepresentable_as(loader: type, *, low, high) -> type:
    """`loader`, answering low/high (None: None) where it raises: below year 1 or above year 9999."""

    class Tolerant(loader):
        def load(self, data):
            try:
                return super().load(data)
            except psycopg.DataError:
                text = bytes(data)
                return low if text.startswith(b"-") or text.endswith(b"BC") else high

    Tolerant.__name__ = f"Tolerant{loader.__name__}"
    return Tolerant


@functools.cache
def _loaders(timezone) -> dict[str, type]:
    # Django's aware loader in the connection's time zone. Django registers its own again on each
    # cursor whose loader's time zone differs, hence the attribute.
    timestamptz = _unrepresentable_as(BaseTzLoader, low=None, high=None)
    timestamptz.timezone = timezone
    return {
        "timestamptz": timestamptz,
        "timestamp": _unrepresentable_as(TimestampLoader, low=datetime.min, high=datetime.max),
        "date": _unrepresentable_as(DateLoader, low=date.min, high=date.max),
    }


def install(sender, connection, **kwargs) -> None:
    """connection_created receiver: register the loaders on a new PostgreSQL connection."""
    if connection.vendor == "postgresql":
        for name, loader in _loaders(connection.timezone).items():
            connection.connection.adapters.register_loader(name, loader)
