"""What an app above the read model adds to /metrics, the dashboard's overview and `tds_status`.

The watchers sit below `alerts`, so they cannot import it; an app above registers what it knows from
its `AppConfig.ready()`, the way Django's system checks are registered, and the watchers read the
registry at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from prometheus_client.core import Metric

# Each yields Prometheus metric families, read from the database when /metrics is scraped.
collectors: list[Callable[[datetime], Iterable[Metric]]] = []
# Each adds one figure to the dashboard's overview tiles: name → a function of now returning a number.
figures: dict[str, Callable[[datetime], int | float]] = {}
# Each adds one section to `tds_status --json`: name → a function of now returning JSON-ready data.
status_sections: dict[str, Callable[[datetime], Any]] = {}


def add_collector(collect: Callable[[datetime], Iterable[Metric]]) -> None:
    if collect not in collectors:
        collectors.append(collect)


def add_status_section(name: str, section: Callable[[datetime], Any]) -> None:
    status_sections[name] = section


def add_figure(name: str, figure: Callable[[datetime], int | float]) -> None:
    figures[name] = figure
