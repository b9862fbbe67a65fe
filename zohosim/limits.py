"""Zoho's call limits (per minute, per day, in flight) and the faults tests inject, as the simulator keeps them."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import Clock

# Zoho's API limits (https://www.zoho.com/books/api/v3/introduction/#api-call-limit): 100 calls a
# minute per organisation on every plan, a daily cap set by the plan, and 5 calls in flight at
# once on the free plan, 10 on a paid one.
PER_MINUTE = 100


@dataclass(frozen=True)
class Plan:
    daily: int
    concurrency: int


PLANS = {
    "free": Plan(daily=1000, concurrency=5),
    "standard": Plan(daily=2000, concurrency=10),
    "professional": Plan(daily=5000, concurrency=10),
    "premium": Plan(daily=10000, concurrency=10),
    "elite": Plan(daily=10000, concurrency=10),
    "ultimate": Plan(daily=10000, concurrency=10),
}


@dataclass(frozen=True)
class Verdict:
    code: int | None  # None: the call may go ahead; 44 per minute, 45 per day, 1070 concurrency
    # x-rate-limit-limit / -remaining; None when no daily limit is enforced. Zoho always sends its
    # real numbers, and TDS Core believes them over its plan's cap: an unlimited simulator, which
    # has no real numbers, sends none, so a test's ZOHO_PLAN decides.
    limit: int | None
    remaining: int | None
    reset: int  # x-rate-limit-reset: seconds to the daily reset


class Limits:
    """Counts accepted API calls on the simulator's clock; refused calls are not counted."""

    def __init__(self, clock: Clock, *, per_minute: int | None, daily: int | None, concurrency: int | None) -> None:
        self.clock = clock
        self.per_minute, self.daily, self.concurrency = per_minute, daily, concurrency
        self._lock = threading.Lock()
        self._minute: deque[datetime] = deque()
        self._day: tuple[object, int] = (None, 0)
        self.in_flight = 0

    def admit(self) -> Verdict:
        """Decide one API call and, when it is accepted, count it and hold a concurrency slot."""
        now = self.clock.now()
        with self._lock:
            day, used = self._day
            if day != now.date():
                used = 0
            while self._minute and self._minute[0] <= now - timedelta(minutes=1):
                self._minute.popleft()
            code = None
            if self.daily is not None and used >= self.daily:
                code = 45
            elif self.per_minute is not None and len(self._minute) >= self.per_minute:
                code = 44
            elif self.concurrency is not None and self.in_flight >= self.concurrency:
                code = 1070
            if code is None:
                used += 1
                self._minute.append(now)
                self.in_flight += 1
            self._day = (now.date(), used)
            return self._verdict(code, used, now)

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def headers(self) -> Verdict:
        now = self.clock.now()
        with self._lock:
            day, used = self._day
            used = used if day == now.date() else 0
        return self._verdict(None, used, now)

    def _verdict(self, code: int | None, used: int, now: datetime) -> Verdict:
        remaining = None if self.daily is None else max(0, self.daily - used)
        return Verdict(code, self.daily, remaining, self.clock.seconds_to_midnight(now))


@dataclass
class Fault:
    kind: str  # "fail", "slow", "drop"
    remaining: int
    path_contains: str | None
    status: int = 0
    code: int | None = None
    seconds: float = 0.0

    def matches(self, target: str, is_api: bool) -> bool:
        # Without a path, a fault aims at API calls only, so a 500 storm does not hit the token endpoint.
        return self.path_contains in target if self.path_contains is not None else is_api


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def take(self, target: str, is_api: bool) -> list[Fault]:
        """Consume at most one matching fault of each kind for this request, oldest first."""
        taken: dict[str, Fault] = {}
        with self._lock:
            for fault in self._queue:
                if fault.kind not in taken and fault.remaining > 0 and fault.matches(target, is_api):
                    fault.remaining -= 1
                    taken[fault.kind] = fault
            self._queue = [f for f in self._queue if f.remaining > 0]
        return [taken[k] for k in ("drop", "slow", "fail") if k in taken]

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
