"""JSON log lines that parse and carry the pipeline's ids; no secret and no payload in them.

A real drain: webhooks stored through the test client, then `manage.py process_queue --once` in a
process of its own with LOG_FORMAT=json, whose every stderr line must be a JSON object.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from sync.models import DeadLetter, QueueItem
from tdscore import logs as tds_logs
from tests.infra.conftest import ROOT, server_env, shared_database_url
from tests.webhooks.conftest import TOKENS, deliver

PAYLOAD_MARK = "Confidential-Widget-Name-4417"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_drain_logs_json_lines_with_the_row_ids_and_no_payload(client, settings):
    settings.TDS_WEBHOOK_TOKEN = TOKENS
    assert deliver(client, "products", {"item_id": "501", "name": PAYLOAD_MARK}).status_code == 202
    # A rate that is not a number cannot be applied: the row is dead-lettered, and that is logged.
    assert deliver(client, "products", {"item_id": "502", "name": PAYLOAD_MARK, "rate": "n/a"}).status_code == 202
    # Configured as a deployment is, so the system checks have no warning to print (as text).
    configured = {name: "x" for name in ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_ORGANIZATION_ID")}
    configured.update(ZOHO_REFRESH_TOKEN="1000." + "c" * 32 + "." + "d" * 32, SLACK_WEBHOOK_URL="http://127.0.0.1:9/")
    env = server_env(shared_database_url(), LOG_FORMAT="json", TDS_WEBHOOK_TOKEN=TOKENS[1], **configured)
    done = subprocess.run(
        [sys.executable, "manage.py", "process_queue", "--once"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines, "the drain logged nothing"
    assert PAYLOAD_MARK not in done.stderr and TOKENS[1] not in done.stderr
    dead = DeadLetter.objects.get()
    logged = [line for line in lines if line.get("queue_row") == dead.queue_item_id]
    assert logged, lines
    assert logged[0]["level"] == "ERROR" and logged[0]["logger"] == "sync.queue"
    assert logged[0]["entity"] == "products" and logged[0]["event_id"] == dead.inbox_event_id
    assert logged[0]["worker"].startswith("cli")
    assert QueueItem.objects.filter(status=QueueItem.Status.COMPLETED).count() == 1


class Collect(logging.Handler):
    """Records as the console handler sees them: its context filter runs when each line is written."""

    def __init__(self):
        super().__init__()
        self.addFilter(tds_logs.ContextFilter())
        self.lines: list[tuple[str, dict]] = []

    def emit(self, record):
        ids = {name: getattr(record, name) for name in tds_logs.FIELDS if hasattr(record, name)}
        self.lines.append((record.getMessage(), ids))


@pytest.fixture
def collected():
    handler, logger = Collect(), logging.getLogger("sync.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, handler.lines
    logger.removeHandler(handler)


def test_lines_carry_the_ids_of_their_context_nested_and_learnt(collected):
    logger, lines = collected

    @tds_logs.logs_as(run="run_id")
    def execute(run_id: int) -> None:
        logger.info("claimed")
        tds_logs.add_log_context(entity="bills")
        logger.info("pulling")

    with tds_logs.log_context(worker="w-1"):
        execute(7)
        logger.info("between runs")
    logger.info("outside")
    assert lines == [
        ("claimed", {"run": 7, "worker": "w-1"}),
        ("pulling", {"entity": "bills", "run": 7, "worker": "w-1"}),
        ("between runs", {"worker": "w-1"}),  # what a run learnt ends with it
        ("outside", {}),
    ]
    with pytest.raises(TypeError):
        tds_logs.log_context(payload="{...}").__enter__()
    with pytest.raises(RuntimeError):
        tds_logs.add_log_context(entity="bills")  # outside any context it would label every later line


def _format(record: logging.LogRecord, log_format: str) -> str:
    handler_config = tds_logs.logging_config(log_format=log_format, level="INFO", httpx_level="WARNING")
    formatter = (
        tds_logs.json_formatter()
        if log_format == "json"
        else tds_logs.TextFormatter(handler_config["formatters"]["main"]["fmt"])
    )
    for filter_ in (tds_logs.ContextFilter(), tds_logs.RedactFilter()):
        filter_.filter(record)
    return formatter.format(record)


def _record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("sync.test", logging.WARNING, __file__, 1, message, args, exc_info)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_secrets_are_redacted_from_messages_and_tracebacks(log_format):
    refresh = "1000." + "a" * 32 + "." + "b" * 32
    try:
        raise RuntimeError(f"refresh failed for {refresh}")
    except RuntimeError:
        exc_info = sys.exc_info()
    with tds_logs.log_context(entity="invoices", object_id="INV-1"):
        line = _format(
            _record(
                "POST /webhooks/invoices?token=%s&x=1 Authorization: Zoho-oauthtoken %s",
                "s3cret",
                "tok123",
                exc_info=exc_info,
            ),
            log_format,
        )
    assert "s3cret" not in line and "tok123" not in line and refresh not in line
    assert "token=[redacted]&x=1" in line
    if log_format == "json":
        parsed = json.loads(line)
        assert (parsed["entity"], parsed["object_id"], parsed["level"]) == ("invoices", "INV-1", "WARNING")
        assert "RuntimeError" in parsed["exc_info"]
    else:
        assert line.endswith("[entity=invoices object_id=INV-1]") or "[entity=invoices object_id=INV-1]" in line


def test_a_long_message_is_cut_so_no_payload_is_logged_whole():
    line = _format(_record("payload: %s", "x" * 50_000), "json")
    assert len(line) < tds_logs.MAX_MESSAGE_CHARS + 500


def test_the_format_follows_log_format_then_debug_then_the_terminal():
    assert tds_logs.log_format("json", debug=True) == "json"
    assert tds_logs.log_format("text", debug=False) == "text"
    assert tds_logs.log_format("", debug=True) == "text"
    with pytest.raises(ValueError):
        tds_logs.log_format("yaml", debug=False)
    assert django_settings.LOGGING["loggers"]["httpx"]["level"] == "WARNING"  # one line per Zoho call: not by default
