"""Queue rows made the way ingest makes them, and applied the way the worker applies them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from sync import entities, queue
from sync.handlers import ApplyOutcome, apply_batch
from sync.models import QueueItem
from sync.payloads import content_hash, version_of

ROOT = Path(__file__).resolve().parents[2]
# The Zoho samples (recorded, as in shared/zoho, plus a price book and a user from Zoho's docs).
SAMPLES = ROOT / "zohosim" / "samples"
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def sample(name: str) -> dict[str, Any]:
    """A Zoho sample, unwrapped from its envelope (`{"code":0,"message":…,"<key>":{…}}`) if it has one."""
    body = json.loads((SAMPLES / f"{name}.json").read_text())
    if "code" not in body:
        return body
    return next(v for v in body.values() if isinstance(v, dict))


def enqueue(slug: str, obj: dict[str, Any], *, now: datetime = NOW, **fields: Any) -> QueueItem:
    located = entities.locate(slug, obj)
    return queue.enqueue(
        entity=located.entity.slug,
        object_id=fields.pop("object_id", located.object_id),
        payload=located.obj,
        content_hash=content_hash(located.obj),
        version=fields.pop("version", version_of(located.obj)),
        source=fields.pop("source", QueueItem.Source.WEBHOOK),
        now=now,
        **fields,
    )


def apply(*items: QueueItem, now: datetime = NOW) -> list[ApplyOutcome]:
    """Apply rows in one batch inside a transaction, as the worker does; outcomes in the given order."""
    with transaction.atomic():
        outcomes = apply_batch(list(items), now=now)
    return [outcomes[item.pk] for item in items]


@pytest.fixture(autouse=True)
def _db(db):
    return db
