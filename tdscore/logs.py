"""Logs an operator can search and a leak cannot reach (README: LOG_FORMAT).

- `log_context(entity=…, run=…)` names what the code below it works on; every log line written
  inside carries those ids (a contextvar, so threads and nested contexts each see their own).
- JSON lines (python-json-logger) or plain text: LOG_FORMAT=json|text, by default text when DEBUG
  is on or stderr is a terminal, JSON otherwise (systemd, containers).
- Secrets never reach a line: `token=` and other credential query values, Authorization headers and
  OAuth tokens are redacted from every message and traceback, in Django's loggers (runserver's
  request lines included) and in gunicorn's access log (tdscore.access_log, set by the root's
  gunicorn.conf.py). A message is cut at MAX_MESSAGE_CHARS so no payload is logged whole.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from pythonjsonlogger.json import JsonFormatter

# The ids a pipeline line may carry, in the order text lines show them.
FIELDS = ("event_id", "entity", "object_id", "queue_row", "run", "worker")
MAX_MESSAGE_CHARS = 2000
REDACTED = "[redacted]"

_NO_CONTEXT: dict[str, object] = {}
_context: ContextVar[dict[str, object]] = ContextVar("tds_log_context", default=_NO_CONTEXT)
F = TypeVar("F", bound=Callable[..., Any])


def _known(ids: dict[str, object]) -> dict[str, object]:
    unknown = set(ids) - set(FIELDS)
    if unknown:
        raise TypeError(f"log ids are {', '.join(FIELDS)}, not {', '.join(sorted(unknown))}")
    return {name: value for name, value in ids.items() if value is not None}


@contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Add `ids` (names from FIELDS; None values are left out) to every line logged inside."""
    token = _context.set({**_context.get(), **_known(ids)})
    try:
        yield
    finally:
        _context.reset(token)


def logs_as(**fields: str) -> Callable[[F], F]:
    """Decorate an entry point so every line logged during a call carries ids taken from its
    arguments: `@logs_as(worker="worker_id")` logs `worker=<the worker_id passed>`."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            arguments = signature.bind_partial(*args, **kwargs).arguments
            with log_context(**{field: arguments.get(argument) for field, argument in fields.items()}):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def add_log_context(**ids: object) -> None:
    """Add ids learnt inside a log_context() (a run's entity, once claimed) to the rest of it."""
    current = _context.get()
    if current is _NO_CONTEXT:
        raise RuntimeError("add_log_context() outside log_context() would label every later line")
    current.update(_known(ids))


# Credentials as they appear in URLs, headers, reprs and JSON: the value is replaced, the name kept.
_SECRET_NAMES = r"token|access_token|refresh_token|client_secret|secret|password|signature|code"
_SECRET_NAME = re.compile(rf"(?i)(?:{_SECRET_NAMES})")
# One parameter of a query string (a request line, a URL, a form body): its name as sent and its
# value, which runs to the next `&` as Django reads it (a `;` is part of the value).
_PARAMETER = re.compile(r"(?<=[?&;])([^=&;\s\"'#?]*)=([^&\s\"'#]*)")


def _redact_parameter(match: re.Match) -> str:
    # The name as Django reads it (percent-decoded, `+` a space): `?%74oken=` is `token`.
    if _SECRET_NAME.fullmatch(unquote_plus(match.group(1))):
        return f"{match.group(1)}={REDACTED}"
    return match.group(0)


_REDACTIONS = [
    # ?token=… &refresh_token=… ?%74oken=… (query strings, request lines, form bodies)
    (_PARAMETER, _redact_parameter),
    # Authorization: Bearer …, Zoho-oauthtoken …, X-TDS-Token: … (header dumps, reprs)
    (
        re.compile(r"(?i)((?:authorization|x-tds-token)[\"']?\s*[:=]\s*[\"']?)(?:[\w-]+ )?[^\s\"',}]+"),
        rf"\1{REDACTED}",
    ),
    # "refresh_token": "…" in JSON or a dict's repr
    (
        re.compile(rf"(?i)([\"'](?:{_SECRET_NAMES})[\"']\s*:\s*[\"'])[^\"']*"),
        rf"\1{REDACTED}",
    ),
    # A Zoho OAuth token wherever it stands: 1000.<32 hex>.<32 hex>
    (re.compile(r"\b1000\.[0-9a-f]{32}\.[0-9a-f]{32}\b"), REDACTED),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Puts the ids of the enclosing log_context() on the record (JSON fields, text suffix)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class RedactFilter(logging.Filter):
    """Redacts secrets from the message and cuts it to its first MAX_MESSAGE_CHARS characters. On
    the handler, so every logger's lines pass it; the formatters below redact tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if len(cleaned) > MAX_MESSAGE_CHARS:
            cleaned = cleaned[:MAX_MESSAGE_CHARS] + f"… [{len(cleaned) - MAX_MESSAGE_CHARS} characters cut]"
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class _RedactsTracebacks(logging.Formatter):
    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


class TextFormatter(_RedactsTracebacks):
    """`time LEVEL logger message [entity=… run=…]`: the ids at the end, where a reader skims."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if hasattr(record, name))
        line = super().formatMessage(record)
        return f"{line} [{ids}]" if ids else line


class RedactingJsonFormatter(_RedactsTracebacks, JsonFormatter):
    """JSON lines; string fields passed as `extra` are redacted as the message is."""

    def process_log_record(self, log_record: dict) -> dict:
        return {name: redact(value) if isinstance(value, str) else value for name, value in log_record.items()}


def json_formatter() -> JsonFormatter:
    return RedactingJsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        # Django's request logs put the request (its repr holds the query string) or the socket
        # on the record: neither belongs in a log line.
        reserved_attrs=[*JsonFormatter().reserved_attrs, "request", "server_time"],
        json_ensure_ascii=False,
    )


def log_format(choice: str, *, debug: bool) -> str:
    """LOG_FORMAT: "json" or "text"; empty picks text for a person (DEBUG, a terminal), JSON otherwise."""
    if choice in ("json", "text"):
        return choice
    if choice:
        raise ValueError(f"LOG_FORMAT must be json or text, not {choice!r}")
    return "text" if debug or sys.stderr.isatty() else "json"


def logging_config(*, log_format: str, level: str, httpx_level: str) -> dict:
    """settings.LOGGING: one stderr handler that every logger (django.server included) writes to."""
    formatter = {"()": json_formatter} if log_format == "json" else {"()": TextFormatter}
    formatter_text = "%(asctime)s %(levelname)s %(name)s %(message)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}, "redact": {"()": RedactFilter}},
        "formatters": {"main": {**formatter, **({"fmt": formatter_text} if log_format == "text" else {})}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "filters": ["context", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # runserver's request lines, through the redacting handler instead of Django's own.
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # django-q2 adds a plain-text handler of its own unless its logger has one already.
            "django-q": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # One INFO line per Zoho call is noise at the call rates the budget allows.
            "httpx": {"level": httpx_level},
            "httpcore": {"level": "WARNING"},
        },
    }
