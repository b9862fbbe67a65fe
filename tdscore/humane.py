"""Times as operators read them in pages and command output."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """A span in the unit it is thought of in: "45 s", "12 min", "3 h 5 min", "4 days"."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
