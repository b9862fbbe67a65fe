"""Facts about a Zoho object that every stage agrees on: its content hash and its version."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any


def canonical_json(obj: Any) -> str:
    """The object as the content hash sees it: sorted keys, `,`/`:` separators, no ASCII escaping."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(obj: Any, *, canonical: str | None = None) -> str:
    """SHA-256 hex of the unwrapped object's canonical JSON, UTF-8 (SPEC §6).

    The inbox, the queue and the ERP rows all use this one function, so equal content is equal
    everywhere. Pass `canonical` when the caller already has `canonical_json(obj)` (a pull stores
    that same text as the queue row's payload, so each row is encoded once).
    """
    text = canonical_json(obj) if canonical is None else canonical
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_zoho_time(value: Any) -> datetime | None:
    """Zoho's `2026-06-09T09:45:41-0400` (or with `+05:30`, or `Z`) as an offset-aware datetime.

    A value without an offset, or not a time at all, is None: comparing it would be a guess.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def version_of(obj: dict[str, Any]) -> datetime | None:
    """Zoho `last_modified_time`, or `updated_time` where only that is given (SPEC §6)."""
    return parse_zoho_time(obj.get("last_modified_time")) or parse_zoho_time(obj.get("updated_time"))
