"""The simulator's injectable clock and Zoho's way of writing times."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


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
