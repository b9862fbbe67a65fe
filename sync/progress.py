"""How far a long command has gone: a tqdm bar on a terminal, plain counted lines anywhere else.

An operator at a terminal wants one line that moves, with counts and the time left; a log file, a
pipe or cron's mail wants whole lines it can read later, and a bar's carriage returns would be
noise there. So the same calls print either:

    with Progress(self.stdout, "products", total=450, unit="rows", every=100) as progress:
        for row in rows:
            ...
            progress.advance(replayed=ok, failed=bad)  # one more done; the counts shown beside
    # or, for work that reports where it is rather than one step at a time (a pull's calls):
        progress.reach(run.calls, total=run.estimated_calls, page=3, fetched=60)

Not a terminal, it writes a line each time the count passes a multiple of `every` (`every=1`: each
call, e.g. once per page), and a last line at the end if the last step printed none:

    products: 200/450 rows (44%) · replayed 199 · failed 1 · about 12 s left
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from tqdm import tqdm

from tdscore.humane import duration


def _stream(out: Any) -> TextIO:
    # A command's self.stdout (Django's OutputWrapper) ends every write with a newline, which would
    # stack the bar's redraws one under another: the bar and the lines go to the stream beneath it.
    return getattr(out, "_out", out)


class Progress:
    def __init__(
        self,
        out: Any,
        label: str,
        *,
        total: int | None = None,
        unit: str = "rows",
        every: int = 1,
        tty: bool | None = None,
    ) -> None:
        self.stream = _stream(out)
        self.label, self.total, self.unit, self.every = label, total, unit, max(1, every)
        self.done, self.counts = 0, {}
        self.printed = 0  # the count at the last plain line
        self.started = time.monotonic()
        on_terminal = self.stream.isatty() if tty is None else tty
        self.bar = (
            tqdm(total=total, desc=label, unit=f" {unit}", file=self.stream, dynamic_ncols=True, mininterval=0.5)
            if on_terminal
            else None
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, n: int = 1, **counts: int | str) -> None:
        """`n` more done; `counts` (running totals) are shown beside."""
        self.reach(self.done + n, **counts)

    def reach(self, done: int, *, total: int | None = None, **counts: int | str) -> None:
        """`done` so far, of `total` when it is known better now (an estimate that grew)."""
        if total is not None or (self.total is not None and done > self.total):
            self.total = max(total or 0, done)
            if self.bar is not None:
                self.bar.total = self.total
        step, self.done = done - self.done, done
        self.counts.update(counts)
        if self.bar is not None:
            self.bar.set_postfix(self.counts, refresh=False)
            self.bar.update(step)
        elif done // self.every > self.printed // self.every:
            self._line()

    def note(self, message: str) -> None:
        """A line of its own (a refusal, a warning) that leaves the bar where it is."""
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            self.stream.write(f"{message}\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.printed != self.done or not self.done:
            self._line()

    def _line(self) -> None:
        self.printed = self.done
        of = f"/{self.total:,}" if self.total else ""
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        parts = [f"{self.label}: {self.done:,}{of} {self.unit}{share}"]
        parts += [
            f"{name} {value:,}" if isinstance(value, int) else f"{name} {value}" for name, value in self.counts.items()
        ]
        left = self._left()
        if left is not None:
            parts.append(f"about {duration(left)} left")
        self.stream.write(" · ".join(parts) + "\n")
        self.stream.flush()

    def _left(self) -> float | None:
        """Seconds to go at the rate so far; None before there is a rate, at the end, or under a second."""
        if not self.total or not self.done or self.done >= self.total:
            return None
        left = (time.monotonic() - self.started) / self.done * (self.total - self.done)
        return left if left >= 1 else None
