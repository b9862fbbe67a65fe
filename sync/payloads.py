"""Facts about a Zoho object that every stage agrees on: its content hash and its version."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sync.config_keys import MAX_VERSION_SKEW_MINUTES
from tdscore import config


def canonical_json(obj: Any) -> str:
    """The object as the content hash sees it: sorted keys, `,`/`:` separators, no ASCII escaping."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(obj: Any, *, canonical: str | None = None) -> str:
    """SHA-256 hex of the unwrapped object's canonical JSON, UTF-8.

    The inbox, the queue and the ERP rows all use this one function, so equal content is equal
    everywhere. Pass `canonical` when the caller already has `canonical_json(obj)` (a pull stores
    that same text as the queue row's payload, so each row is encoded once).
    """
    text = canonical_json(obj) if canonical is None else canonical
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Unstorable(ValueError):
    """An object that is valid JSON but cannot be stored as typed in every database."""


# `\u0000` in canonical JSON is a NUL only when its backslash is not itself escaped: preceded by
# an even number of backslashes (a string holding the six characters `\u0000` encodes as `\\u0000`).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def storable_json(obj: Any) -> str:
    """canonical_json(obj), or Unstorable when neither PostgreSQL nor JSON can hold it as it is.

    PostgreSQL's jsonb refuses a NUL in a string or key; no UTF-8 text holds a lone surrogate;
    JSON has no NaN or Infinity (which is what `1e400`, and an integer past a double, parse to).
    SQLite would keep some of these, but a payload must mean the same on both databases.
    """
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise Unstorable("a number is out of range (NaN, Infinity, or beyond a double)") from None
    except RecursionError:
        raise Unstorable("the object is nested too deeply") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Unstorable("a string or key holds a lone surrogate (not UTF-8)") from None
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise Unstorable("a string or key holds a NUL character")
    return text


# A version must survive conversion to UTC and display in any time zone (offsets up to ±24 h):
# PostgreSQL's timestamptz holds more, but Python's datetime (years 1–9999) reads it back.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


class _OutOfRange:
    """A well-formed, offset-aware time that no stage can hold (see _EARLIEST/_LATEST)."""


_OUT_OF_RANGE = _OutOfRange()


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _parse(value: Any) -> datetime | _OutOfRange | str | None:
    """The time, _OUT_OF_RANGE, None when there is none, or why a value that is there is unreadable."""
    if _absent(value):
        return None
    if not isinstance(value, str):
        # Zoho documents these fields as ISO 8601 text; a number could be seconds or milliseconds,
        # and reading it either way would be a guess that can freeze or roll back an object.
        return f"is {type(value).__name__} {value!r:.40}, not an ISO 8601 time"
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return f"{value!r:.60} is not a time (ISO 8601 with an offset)"
    if parsed.tzinfo is None:
        return f"{value!r:.60} has no UTC offset, so it names no instant"
    try:
        in_range = _EARLIEST <= parsed.astimezone(UTC) <= _LATEST
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        in_range = False
    return parsed if in_range else _OUT_OF_RANGE


def parse_zoho_time(value: Any) -> datetime | None:
    """Zoho's `2026-06-09T09:45:41-0400` (or with `+05:30`, or `Z`) as an offset-aware datetime.

    Anything else is None: a value without an offset, not a time at all, or a time outside what
    the database and Python can hold once in UTC (year 1 with a positive offset). Comparing it
    would be a guess, so no stage ever stores it as a version; where such a value is an object's
    version, the object is refused with the reason (version_problem()).
    """
    parsed = _parse(value)
    return parsed if isinstance(parsed, datetime) else None


VERSION_FIELDS = ("last_modified_time", "updated_time")


def version_of(obj: dict[str, Any]) -> datetime | None:
    """Zoho `last_modified_time`, or `updated_time` where only that is given; None when unreadable
    (version_problem() says why, and the apply path refuses such an object)."""
    return parse_zoho_time(obj.get("last_modified_time")) or parse_zoho_time(obj.get("updated_time"))


def version_problem(obj: dict[str, Any], *, latest: datetime | None = None) -> str | None:
    """Why the version `obj` carries cannot be trusted (`validation`), or None.

    A version field that is there must be a time with an offset the database can hold: an
    unreadable one is never taken as "no version", which would let the change apply without
    moving the stored version and so hide what it is. A version later than `latest` (the moment
    it arrived plus max_version_skew_minutes) would make every real change after it stale until
    that time, so it is refused too. An object without a version field has no problem here.
    """
    for name in VERSION_FIELDS:
        parsed = _parse(obj.get(name))
        if parsed is _OUT_OF_RANGE:
            return f"{name} is outside the times the database can hold"
        if isinstance(parsed, str):
            return f"{name} {parsed}"
        if latest is not None and isinstance(parsed, datetime) and parsed > latest:
            return (
                f"{name} {parsed.isoformat()} is later than {latest.isoformat()} "
                "(max_version_skew_minutes after it arrived): it would freeze the object"
            )
    return None


def trusted_version(obj: dict[str, Any], *, latest: datetime) -> datetime | None:
    """The version a queue row carries: version_of(obj), or None when version_problem() refuses it
    (so an untrusted version never supersedes the rows waiting before it)."""
    return None if version_problem(obj, latest=latest) else version_of(obj)


def latest_version(arrived: datetime) -> datetime:
    """The latest version an object that arrived at `arrived` may carry (max_version_skew_minutes)."""
    return arrived + timedelta(minutes=config.get(MAX_VERSION_SKEW_MINUTES))
