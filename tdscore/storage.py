"""How PostgreSQL stores our large values: JSON and binary columns compressed with lz4.

Queue payloads, the ERP rows' `raw` copies, audit before/after and inbox bodies are 1–10 KB each,
so nearly every row of those tables goes through TOAST compression, and PostgreSQL's default (pglz)
is slow at it. lz4 (PostgreSQL 14+, in servers built with it, as Debian's and the official images
are) compresses and decompresses several times faster at a similar size: in bench/pull.py's full
sync it took PostgreSQL's own CPU down by about an eighth (docs/BENCHMARKS.md).

A column's compression is a catalog setting: setting it rewrites nothing, and values already stored
stay as they are until rewritten. It is applied after every migrate to every JSON and binary column
of the project's models, so a new model gets it without a migration of its own. A server without
lz4 keeps its default.
"""

from __future__ import annotations

from django.apps import apps
from django.db import connections, models

COMPRESSED_FIELDS = (models.JSONField, models.BinaryField)
PROJECT_APPS = {"tdscore", "sync", "zoho", "erp", "alerts", "dashboard"}


def lz4_columns() -> list[tuple[str, str]]:
    """(table, column) of every JSON or binary column of the project's models."""
    return [
        (model._meta.db_table, field.column)
        for config in apps.get_app_configs()
        if config.label in PROJECT_APPS
        for model in config.get_models()
        if not model._meta.proxy
        for field in model._meta.local_concrete_fields
        if isinstance(field, COMPRESSED_FIELDS)
    ]


def use_lz4(using: str = "default") -> list[str]:
    """Set lz4 on the columns that do not have it yet; returns them as `table.column`."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    changed = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
        if not row or not row[0]:
            return []
        for table, column in lz4_columns():
            cursor.execute(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
                [connection.ops.quote_name(table), column],
            )
            if cursor.fetchone() != ("l",):
                qn = connection.ops.quote_name
                cursor.execute(f"ALTER TABLE {qn(table)} ALTER COLUMN {qn(column)} SET COMPRESSION lz4")
                changed.append(f"{table}.{column}")
    return changed
