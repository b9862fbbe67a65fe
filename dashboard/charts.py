"""The dashboard's four charts over the last 24 hours, drawn server-side as SVG by pygal.

No script and no stylesheet from anywhere else: `js=[]` drops pygal's tooltip script (a CDN link by
default), an XML filter drops the inline config script that only that tooltip script reads, and the
styles are inlined in the SVG, so the console works on a closed network (and under a CSP without
'unsafe-inline' scripts). The SVG has a viewBox and no fixed size, so it shrinks to a phone's width.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pygal
from django.core.cache import cache
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

from monitoring import stats
from monitoring.rollups import MINUTE, Series
from tdscore.models import Metric

SPAN = timedelta(hours=24)
# Ten-minute steps: 144 points a line reads well at phone and desktop widths and keeps the page small.
STEP = timedelta(minutes=10)
PER_MINUTE = STEP / timedelta(minutes=1)
CACHE_SECONDS = 180  # a drawing outlives its minute a little, for a roll-up that runs late

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#334155",
    foreground_strong="#0f172a",
    foreground_subtle="#cbd5e1",
    colors=("#2563eb", "#16a34a", "#dc2626", "#d97706"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=14,
)


@dataclass(frozen=True)
class Chart:
    title: str
    svg: SafeString
    points: int  # points with a value: 0 means the chart says "no data"


def _without_scripts(root):
    for parent in root.iter():
        for child in list(parent):
            if str(child.tag).rpartition("}")[2] == "script":
                parent.remove(child)
    return root


def _hour_marks(since: datetime, now: datetime) -> list[datetime]:
    """Every fourth whole hour in the span: even, readable x labels instead of pygal's own picks."""
    mark = since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    marks = []
    while mark <= now:
        if mark.hour % 4 == 0:
            marks.append(mark)
        mark += timedelta(hours=1)
    return marks


def _line(
    title: str, lines: dict[str, list[dict]], *, unit: str, since: datetime, now: datetime, scale: float = 1.0
) -> Chart:
    chart = pygal.DateTimeLine(
        js=[],
        style=STYLE,
        # A viewBox this size reads at a phone's width and at half a wide screen alike.
        width=520,
        height=270,
        explicit_size=False,
        disable_xml_declaration=True,
        show_dots=False,
        stroke_style={"width": 2},
        show_x_guides=False,
        x_labels=_hour_marks(since, now),
        x_value_formatter=lambda at: at.strftime("%H:%M"),
        # At most about six y labels, so a gauge's axis never turns into a ruler.
        max_scale=6,
        min_scale=3,
        value_formatter=lambda value: f"{value:,.3g} {unit}".strip(),
        legend_at_bottom=True,
        legend_at_bottom_columns=len(lines),
        include_x_axis=True,
        margin=8,
        no_data_text="No data yet",
        title=None,
    )
    chart.add_xml_filter(_without_scripts)
    points = 0
    for label, line in lines.items():
        values = [(p["at"], None if p["value"] is None else p["value"] * scale) for p in line]
        points += sum(1 for _, value in values if value)
        chart.add(label, values, allow_interruptions=True)
    # Safe: pygal escapes text into its SVG, and every label here is ours.
    return Chart(title=title, svg=mark_safe(chart.render(is_unicode=True)), points=points)


def day_charts(now: datetime) -> list[Chart]:
    """The four charts up to the last rolled-up minute. They change only when a minute is rolled up,
    so each minute's drawing is cached and shared by every refresh and every process (with Redis)."""
    mark = Metric.objects.filter(name=Series.ROLLED_UP, at__gte=now - SPAN).order_by("-at").values("pk", "at").first()
    if mark is None:
        # Before the first roll-up the counts would draw as a flat zero: say "no data" instead.
        return _draw(now - SPAN, now, rolled=False)
    # The mark's id too: a minute rolled up again gets a new mark, so its drawing is not reused.
    last = mark["at"]
    key = f"tds:dashboard:charts:{last:%Y%m%dT%H%M}:{mark['pk']}"
    return cache.get_or_set(key, lambda: _draw(last - SPAN + MINUTE, last, rolled=True), CACHE_SECONDS)


def _draw(since: datetime, now: datetime, *, rolled: bool) -> list[Chart]:
    names = [
        Series.RECEIVED,
        Series.APPLIED,
        Series.FAILED,
        Series.QUEUE_DEPTH,
        Series.DLQ_SIZE,
        Series.LATENCY_P95,
        Series.LATENCY_P50,
    ]
    found = stats.many_series(names, since, now, step=STEP) if rolled else dict.fromkeys(names, [])
    applied, failed = found[Series.APPLIED], found[Series.FAILED]
    rate = [
        {"at": a["at"], "value": f["value"] / (a["value"] + f["value"]) if a["value"] + f["value"] else None}
        for a, f in zip(applied, failed, strict=True)
    ]  # as stats.failure_rate_series, without reading both series a second time
    span = {"since": since, "now": now}
    return [
        _line(
            "Throughput (changes per minute)",
            {"received": found[Series.RECEIVED], "applied": applied, "failed": failed},
            unit="/min",
            scale=1 / PER_MINUTE,
            **span,
        ),
        _line(
            "Queue depth",
            {"queue depth": found[Series.QUEUE_DEPTH], "dead letters": found[Series.DLQ_SIZE]},
            unit="",
            **span,
        ),
        _line(
            "End-to-end latency",
            {"p95": found[Series.LATENCY_P95], "p50": found[Series.LATENCY_P50]},
            unit="s",
            **span,
        ),
        _line("Failure rate", {"failed / finished": rate}, unit="%", scale=100, **span),
    ]
