"""The simulator's injectable clock and Zoho's way of writing and reading times."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def parse_zoho(value: object) -> datetime | None:
    """A time as Zoho writes it (`2026-06-09T09:45:41-0400`, or with `+05:30`, or `Z`); None for
    anything else: no offset, not a time, or one that cannot be compared once in UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        parsed.astimezone(UTC)  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def format_zoho(moment: datetime, zone: ZoneInfo) -> str:
    """`2026-06-09T09:45:41-0400`: org-local, seconds, offset without a colon, as Zoho writes it."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S%z")


class Clock:
    """Real time plus an offset that tests push forward; read by every request handler thread."""

    def __init__(self, zone: ZoneInfo):
        self.zone = zone
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return (datetime.now(UTC) + offset).astimezone(self.zone)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def format(self, moment: datetime | None = None) -> str:
        return format_zoho(moment or self.now(), self.zone)

    def seconds_to_midnight(self, moment: datetime) -> int:
        # Zoho's daily count resets at the organisation's local midnight (x-rate-limit-reset).
        local = moment.astimezone(self.zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=self.zone)
        return max(1, int((midnight - local).total_seconds()))
