"""The one error type of the Zoho boundary, and the one place that reads Zoho's answers."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx

# Zoho's `code` values that are not about the request's content (zoho/README.md "Limits and errors").
CODE_OK = 0
CODE_RATE_LIMIT = 44
CODE_DAILY_LIMIT = 45
CODE_INVALID_TOKEN = 14
CODE_NOT_AUTHORISED = 57
CODE_INTERNAL = 1000
CODE_NOT_FOUND = 1002
CODE_CONCURRENCY = 1070

_THROTTLES = {CODE_RATE_LIMIT: "rate_limit", CODE_DAILY_LIMIT: "daily_limit", CODE_CONCURRENCY: "concurrency"}


class ZohoError(Exception):
    """A call to Zoho that did not give us the data.

    `permanent` errors are about the request (400, 404): retrying cannot help, the queue
    dead-letters them. Everything else is an infrastructure wait: the queue retries the row and
    refunds the attempt. `kind` is one of rate_limit, daily_limit, concurrency, auth, scope,
    not_found, rejected, server, network, breaker_open, budget.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        permanent: bool = False,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.permanent = permanent
        self.status = status
        self.code = code
        self.retry_after = retry_after  # seconds Zoho asked us to wait, when it said so

    def __reduce__(self):
        # Keyword-only arguments defeat Exception's default pickling (django-q2 pickles task errors).
        return (partial(ZohoError, kind=self.kind), (str(self),), self.__dict__)

    def __repr__(self) -> str:
        return f"ZohoError({str(self)!r}, kind={self.kind!r}, status={self.status}, code={self.code})"


def _body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def raise_for_response(response: httpx.Response) -> dict[str, Any]:
    """Return the body of a successful answer, else raise the ZohoError it means.

    Zoho can answer an error with HTTP 200, so `code` is read whatever the status says.
    """
    status, body = response.status_code, _body(response)
    code = body.get("code") if body is not None else None
    if status < 300 and body is not None and code in (CODE_OK, None):
        return body
    message = f"Zoho {response.request.method} {response.request.url.path}: HTTP {status}"
    if body is not None:
        message += f", code {code}: {body.get('message', '')}"
    else:
        message += f": {response.text[:200]!r}"
    options = {"status": status, "code": code}
    if code == CODE_NOT_AUTHORISED:
        # A missing OAuth scope: a new token has the same scopes, so no refresh. The data is fine;
        # an operator must grant the scope, so this is no reason to dead-letter rows.
        raise ZohoError(message, kind="scope", **options)
    if status == 401:
        raise ZohoError(message, kind="auth", **options)
    if code in _THROTTLES or status == 429:
        kind = _THROTTLES.get(code, "rate_limit")
        raise ZohoError(message, kind=kind, retry_after=_retry_after(response), **options)
    if status >= 500 or code == CODE_INTERNAL or body is None:
        raise ZohoError(message, kind="server", **options)
    if status == 404 or code == CODE_NOT_FOUND:
        raise ZohoError(message, kind="not_found", permanent=True, **options)
    raise ZohoError(message, kind="rejected", permanent=True, **options)
