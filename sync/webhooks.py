"""The webhook receiver: the front door.

`POST|PUT|DELETE /webhooks/<entity>`: authenticate, parse, store (sync.inbox: the raw body in
`tds_inbox_events` and its queue row, all or nothing), answer, only after the commit, so nothing
acknowledged can be lost. DELETE queues a delete (or `?operation=delete` on a POST); one without a
body takes its object (the id) from the query parameters. No detail echoes the payload or the
database's message (docs/SECURITY.md lists what each bad input gets).

Answers, checked in this order, each with a stable `error` code in
`{"status": "error", "error": <code>, "detail": <what was wrong>}`:

- 405 `method_not_allowed`      — not POST, PUT or DELETE
- 413 `payload_too_large`       — over TDS_WEBHOOK_MAX_BYTES (Content-Length, or counted while reading)
- 411 `length_required`         — a chunked body the server cannot de-chunk (runserver): never
                                  stored empty
- 401 `unauthorized`            — no configured scheme passed (nothing stored)
- 429 `throttled`               — the same, from an address that keeps failing
- 404 `unknown_entity`          — not one of the eleven slugs
- 415 `unsupported_media_type`  — not JSON, text/plain or form-urlencoded (none is tried as JSON)
- 400 `invalid_payload`         — unparseable, JSON that is not an object, or nested deeper than
                                  MAX_DEPTH (kept as `rejected`)
- 409 `idempotency_conflict`    — an Idempotency-Key or webhook-id reused with another body
- 503 `database_unavailable`    — the database failed; nothing half-written, the sender may retry
- 202 `{"status": "accepted", "event_id": <id>, "duplicate": false}`, also for an object whose
  content cannot be applied or stored as typed (no id, an id too long, NaN or `1e400`, a NUL or
  a lone surrogate, a version out of range): kept, and dead-lettered as `validation`
- 200 `{"status": "duplicate", "event_id": <first id>, "duplicate": true}`
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import DatabaseError, DataError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sync import entities, inbox, payloads, queue, redaction, webhook_auth
from sync.models import InboxEvent, QueueItem
from tdscore.logs import logs_as

METHODS = {"POST": QueueItem.Operation.UPSERT, "PUT": QueueItem.Operation.UPSERT, "DELETE": QueueItem.Operation.DELETE}


# A missing type is tried as JSON; `application/<vendor>+json` is JSON too.
ACCEPTED_TYPES = {"", "application/json", "text/json", "text/plain", webhook_auth.FORM_TYPE}
# Headers worth keeping for an operator; never a token, a signature or a cookie.
KEPT_HEADERS = {"content-type", "user-agent", "idempotency-key", "webhook-id", "webhook-timestamp", "x-request-id"}
# Query parameters that are instructions, not the object of a bodiless delete.
CONTROL_PARAMETERS = {"token", "operation"}
# The parser's depth limit: deeper bodies are unparseable. Far below Python's recursion
# limit, so no stage (json, psycopg, the admin) ever meets a RecursionError on a stored payload.
MAX_DEPTH = 256
OBJECT_ID_LENGTH = QueueItem._meta.get_field("object_id").max_length
KEY_LENGTH = InboxEvent._meta.get_field("idempotency_key").max_length


def error(status: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"status": "error", "error": code, "detail": detail, **extra}, status=status)


@csrf_exempt
@logs_as(entity="entity")
def receive(request: HttpRequest, entity: str) -> JsonResponse:
    if request.method not in METHODS:
        response = error(405, "method_not_allowed", "use POST, PUT or DELETE")
        response["Allow"] = ", ".join(METHODS)
        return response
    limit = settings.TDS_WEBHOOK_MAX_BYTES
    try:
        body = read_body(request, limit)
    except OSError:  # the sender hung up mid-body (UnreadablePostError): nothing to store
        return error(400, "invalid_payload", "the body could not be read to its end")
    except LengthRequired:
        return error(411, "length_required", "this server cannot read a chunked body; send a Content-Length")
    if body is None:
        return error(413, "payload_too_large", f"the body is over the limit of {limit} bytes")
    now = timezone.now()
    source = webhook_auth.authenticate(request, body, now=now)
    if source is None:
        if webhook_auth.record_failure(request.META.get("REMOTE_ADDR", ""), now=now):
            return error(429, "throttled", "too many failed authentications from this address; wait and retry")
        return error(401, "unauthorized", "no valid token or signature")
    if entity not in entities.ENTITIES:
        return error(404, "unknown_entity", f"the entity is not one of: {', '.join(entities.ENTITIES)}")
    media_type = _media_type(request)
    if media_type not in ACCEPTED_TYPES and not media_type.endswith("+json"):
        return error(415, "unsupported_media_type", "the content type is not JSON, text/plain or a form")
    try:
        return Delivery(request, body, entity, source, _operation(request), now).store()
    except DatabaseError as exc:
        # The transaction rolled back whole: the sender gets a retryable answer, never a 500.
        return error(503, "database_unavailable", f"the database did not answer ({type(exc).__name__}); retry")


class LengthRequired(Exception):
    pass


def read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None when it is over `limit`. Never reads more than `limit + 1` bytes.

    A declared Content-Length is judged before reading; a chunked body (no length) is read from
    the server's stream when the server de-chunks it (gunicorn says so with wsgi.input_terminated)
    and refused (LengthRequired) when it cannot (runserver hands the application an empty stream).
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.strip().isdigit():
        if int(declared) > limit:
            return None
        data = request.read(limit + 1)
    elif request.META.get("wsgi.input_terminated"):
        data = request.META["wsgi.input"].read(limit + 1)
    elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise LengthRequired
    else:
        data = b""  # no length and no body announced: a bodiless DELETE
    return None if len(data) > limit else data


def _media_type(request: HttpRequest) -> str:
    return (request.content_type or "").strip().lower()


def _operation(request: HttpRequest) -> str:
    # A Zoho workflow rule on "Deleted" is often left on POST: `?operation=delete` says what it is.
    named = request.GET.get("operation", "").strip().lower()
    return named if named in QueueItem.Operation.values else METHODS[request.method]


class Unparseable(ValueError):
    pass


def parse(body: bytes, media_type: str) -> dict[str, Any]:
    """The body as an object: JSON first whatever the label says (Zoho labels JSON as a
    form), then a form whose one field holds a JSON object (`JSONString={…}`), then flat form pairs.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unparseable("the body is not UTF-8") from None
    try:
        value = _json(text)
    except Unparseable:
        raise
    except ValueError:
        value = None
    else:
        if isinstance(value, dict):
            return _shallow(value, text)
        raise Unparseable(f"the JSON is a {type(value).__name__}, not an object")
    if media_type == webhook_auth.FORM_TYPE:
        pairs = parse_qsl(text, keep_blank_values=True)
        if len(pairs) == 1:
            try:
                inner = _json(pairs[0][1])
            except Unparseable:
                raise
            except ValueError:
                inner = None
            if isinstance(inner, dict):
                return _shallow(inner, pairs[0][1])
        if pairs:
            return dict(pairs)
    raise Unparseable("the body is neither a JSON object nor a form")


def _json(text: str) -> Any:
    try:
        return json.loads(text, parse_int=_integer)
    except RecursionError:
        raise Unparseable(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None


_DOUBLE_DIGITS = len(str(int(sys.float_info.max)))


def _integer(digits: str) -> int | float:
    # An integer past a double's range is out of range as `1e400` is: infinity, which
    # storable_json() refuses. Checked on the digits first, so a 100,000-digit integer never meets
    # Python's int-to-str limit (a ValueError that would make a valid object look unparseable).
    if len(digits.lstrip("-")) > _DOUBLE_DIGITS:
        return math.inf
    number = int(digits)
    return number if abs(number) <= sys.float_info.max else math.inf


def _shallow(obj: dict[str, Any], text: str) -> dict[str, Any]:
    """`obj`, or Unparseable when it nests deeper than MAX_DEPTH.

    The text's brackets bound the depth from above (those inside strings only add to the count),
    so only a body with that many of them is walked.
    """
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return obj
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Unparseable(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return obj


# C0 controls and DEL: PostgreSQL text and jsonb refuse a NUL, and none is readable in the admin.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def printable(value: str) -> str:
    """A header value as kept: control characters written as `\\xNN`, so nothing is lost and the
    database takes it (a header is never a reason to refuse a change)."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", value)


def _kept_headers(request: HttpRequest) -> dict[str, str]:
    return {
        printable(name.lower()): printable(value)
        for name, value in request.headers.items()
        if name.lower() in KEPT_HEADERS
        or (name.lower().startswith("x-zoho-") and "signature" not in name.lower() and "token" not in name.lower())
    }


@dataclass
class Delivery:
    request: HttpRequest
    body: bytes
    slug: str
    source: str
    operation: str
    now: datetime

    def store(self) -> JsonResponse:
        try:
            obj = self._query_object() if self._is_bodiless_delete() else parse(self.body, _media_type(self.request))
        except Unparseable as exc:
            return self._rejected(str(exc))
        obj, redacted = redaction.on_arrival(obj)
        if redacted:
            # About a contact on the erasure list: what is kept is the body without its personal data.
            self.body = json.dumps(obj, ensure_ascii=False).encode()
        located = entities.locate(self.slug, obj)
        try:
            canonical = payloads.storable_json(located.obj)
        except payloads.Unstorable as exc:
            return self._dead_lettered(located, None, str(exc))
        problem = self._unqueueable(located)
        if problem:
            return self._dead_lettered(located, canonical, problem)
        try:
            return self._queued(located, canonical)
        except DataError as exc:
            # Content the checks above missed and the database refuses: retrying cannot help, so
            # keep the body and dead-letter it rather than answer 503 for ever. Never its message.
            return self._dead_lettered(located, None, f"the database refused the content ({type(exc).__name__})")

    def _rejected(self, reason: str) -> JsonResponse:
        digest = hashlib.sha256(self.body).hexdigest()
        event = self._event(self.slug, "", f"raw:{digest}", digest, status=InboxEvent.Status.REJECTED, error=reason)
        event_id, _ = inbox.store_rejected(event, now=self.now)
        return error(400, "invalid_payload", reason, event_id=event_id)

    def _queued(self, located: entities.Located, canonical: str) -> JsonResponse:
        digest = payloads.content_hash(located.obj, canonical=canonical)
        explicit = self._explicit_key()
        key = explicit or self._derived_key(located, digest)
        version = payloads.version_of(located.obj)
        item = queue.pending_row(
            entity=located.entity.slug,
            object_id=located.object_id,
            payload=located.obj,
            content_hash=digest,
            version=version,
            source=QueueItem.Source.WEBHOOK,
            operation=self.operation,
            now=self.now,
        )
        event = self._event(located.entity.slug, located.object_id, key, digest)
        stored = inbox.store_queued(event, item, now=self.now, revertible=not explicit and version is None)
        return self._answer(*stored)

    def _unqueueable(self, located: entities.Located) -> str:
        """Why a storable object still cannot become a queue row (`validation`), or ""."""
        id_field = located.entity.id_field
        if located.object_id is None:
            return f"{located.entity.slug}: the object has no {id_field}"
        if len(located.object_id) > OBJECT_ID_LENGTH:
            return f"{located.entity.slug}: the {id_field} is longer than {OBJECT_ID_LENGTH} characters"
        problem = payloads.version_problem(located.obj, latest=payloads.latest_version(self.now))
        if problem:
            return f"{located.entity.slug}: {problem}"
        return ""

    def _dead_lettered(self, located: entities.Located, canonical: str | None, reason: str) -> JsonResponse:
        """Keep the body (inbox `rejected`) with a `validation` dead letter: accepted, never applied.

        The payload goes to the dead letter only when it can be stored (`canonical`); the raw body
        is in the inbox either way. Keyed by the content (the body, when the content has no JSON).
        """
        digest = hashlib.sha256(canonical.encode() if canonical is not None else self.body).hexdigest()
        object_id = located.object_id or ""
        if canonical is None or len(object_id) > OBJECT_ID_LENGTH:
            object_id = ""
        key = self._explicit_key() or self._derived_key(located, digest, object_id="invalid")
        event = self._event(
            located.entity.slug, object_id, key, digest, status=InboxEvent.Status.REJECTED, error=reason
        )
        payload = located.obj if canonical is not None else None
        stored = inbox.store_dead_lettered(
            event, entity=located.entity.slug, object_id=object_id, payload=payload, error=reason, now=self.now
        )
        return self._answer(*stored)

    def _is_bodiless_delete(self) -> bool:
        return self.operation == QueueItem.Operation.DELETE and not self.body.strip()

    def _query_object(self) -> dict[str, str]:
        # A delete rule may name its record only in the URL (`?item_id=${item.item_id}`): a delete
        # must not be lost for want of a body. Without the id it is dead-lettered, still visible.
        return {name: value for name, value in self.request.GET.items() if name not in CONTROL_PARAMETERS}

    def _explicit_key(self) -> str:
        headers = self.request.headers
        return printable((headers.get("Idempotency-Key") or headers.get("webhook-id") or "").strip())[:KEY_LENGTH]

    def _derived_key(self, located: entities.Located, digest: str, *, object_id: str = "") -> str:
        key = f"{located.entity.slug}:{object_id or located.object_id}:{digest}"
        # A delete often carries the record as last sent: without the suffix it would count as a
        # repeat of that upsert and the delete would be lost.
        return f"{key}:delete" if self.operation == QueueItem.Operation.DELETE else key

    def _event(self, entity: str, object_id: str, key: str, content_hash: str, **fields: Any) -> InboxEvent:
        return InboxEvent(
            entity=entity,
            object_id=object_id,
            source=self.source,
            method=self.request.method,
            content_type=printable(self.request.META.get("CONTENT_TYPE") or "")[:200],
            headers=_kept_headers(self.request),
            raw_body=self.body,
            idempotency_key=key,
            content_hash=content_hash,
            remote_addr=self.request.META.get("REMOTE_ADDR") or None,
            received_at=self.now,
            **fields,
        )

    def _answer(self, event_id: int, outcome: inbox.StoreOutcome) -> JsonResponse:
        if outcome is inbox.StoreOutcome.CONFLICT:
            return error(
                409,
                "idempotency_conflict",
                "this Idempotency-Key or webhook-id was already used with a different body",
                event_id=event_id,
            )
        if outcome is inbox.StoreOutcome.DUPLICATE:
            return JsonResponse({"status": "duplicate", "event_id": event_id, "duplicate": True}, status=200)
        return JsonResponse({"status": "accepted", "event_id": event_id, "duplicate": False}, status=202)
