"""A batch's writes: one INSERT (or upsert on a unique column) per table.

On PostgreSQL the rows travel as ONE jsonb parameter expanded by `jsonb_to_recordset`. Django's
bulk_create builds UNNEST array literals (psycopg escapes every `"` of a JSON text there with a
Python regex callback) or a VALUES list with a placeholder per value that psycopg then re-parses:
for ~3–10 KB Zoho payloads either costs more CPU than the database spends on the statement
(bench/apply_batch.py measures it). Elsewhere (SQLite, the embedded default) bulk_create.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connection, models

from sync.models import QueueItem


def insert(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    upsert_on: str = "",
    raw_from_queue: Sequence[int | None] = (),
) -> None:
    """Insert `objs`; with `upsert_on` (a unique column), update the row that holds the same value.

    Upserted objects get their primary key set (lines need it). Other columns are overwritten whole.
    `raw_from_queue`, one per obj: the queue row whose payload is that obj's `raw`, or None. On
    PostgreSQL such a `raw` is copied from the queue row inside the database instead of travelling
    in the document: a Zoho payload is most of a row, and parsing it again as jsonb was the largest
    part of the upsert (bench/pull.py: PostgreSQL's CPU in a full sync).
    """
    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    if connection.vendor != "postgresql":
        conflict = {}
        if upsert_on:
            others = [f.name for f in fields if f.column != upsert_on]
            conflict = {"update_conflicts": True, "unique_fields": [upsert_on], "update_fields": others}
        model.objects.bulk_create(objs, **conflict)
        return
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    record = ", ".join(f"{qn(f.column)} {f.db_type(connection)}" for f in fields)
    selected, source = columns, ""
    rows = [{f.column: getattr(obj, f.attname) for f in fields} for obj in objs]
    if any(raw_from_queue):
        for row, queue_id in zip(rows, raw_from_queue, strict=True):
            if queue_id is not None:
                row["raw"], row[FROM_QUEUE] = None, queue_id
        record += f", {FROM_QUEUE} bigint"
        selected = ", ".join("COALESCE(r.raw, q.payload)" if f.column == "raw" else f"r.{qn(f.column)}" for f in fields)
        source = f" LEFT JOIN {QueueItem._meta.db_table} q ON q.id = r.{FROM_QUEUE}"
    sql = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) SELECT {selected} FROM jsonb_to_recordset(%s::jsonb) AS r({record}){source}"
    if upsert_on:
        updates = ", ".join(f"{qn(f.column)} = EXCLUDED.{qn(f.column)}" for f in fields if f.column != upsert_on)
        sql += f" ON CONFLICT ({qn(upsert_on)}) DO UPDATE SET {updates} RETURNING {qn(model._meta.pk.column)}, {qn(upsert_on)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [encode(rows)])
        if upsert_on:
            pks = dict((key, pk) for pk, key in cursor.fetchall())
            for obj in objs:
                obj.pk = pks[getattr(obj, upsert_on)]


# The document's extra key naming the queue row to copy `raw` from: no model column starts with "_".
FROM_QUEUE = "_raw_from_queue"


def encode(rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON text. orjson: a batch's document carries every row's whole Zoho payload
    (`raw`, audit before/after), and encoding it was a tenth of a drainer's CPU with the standard
    library; orjson takes a tenth of that. Datetimes go as ISO 8601 and Decimals (default=str) as
    text, both of which PostgreSQL casts to the column's type. An integer beyond 64 bits, which
    orjson refuses and a Zoho payload may hold, takes the standard library's path.
    """
    try:
        return orjson.dumps(rows, default=str).decode()
    except orjson.JSONEncodeError:
        return json.dumps(rows, default=str, ensure_ascii=False)
