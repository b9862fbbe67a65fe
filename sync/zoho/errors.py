"""The one error type of the Zoho boundary, and the one place that reads Zoho's answers."""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import Any

import httpx

# Zoho's `code` values that are not about the request's content (zoho/README.md "Limits and errors").
CODE_OK = 0
CODE_RATE_LIMIT = 44
CODE_DAILY_LIMIT = 45
CODE_NOT_AUTHORISED = 57
CODE_INTERNAL = 1000
CODE_NOT_FOUND = 1002
CODE_CONCURRENCY = 1070


class ErrorKind(StrEnum):
    """Why a call to Zoho did not give us the data."""

    RATE_LIMIT = "rate_limit"  # 429 code 44, or no limiter slot in time
    DAILY_LIMIT = "daily_limit"  # 429 code 45: Zoho's day is spent
    CONCURRENCY = "concurrency"  # 429 code 1070
    AUTH = "auth"  # 401: the token (or the refresh token) is refused
    SCOPE = "scope"  # code 57 on an accepted token: a scope is missing
    NOT_FOUND = "not_found"
    REJECTED = "rejected"  # any other 4xx: the request itself is wrong
    SERVER = "server"  # 5xx, code 1000, an unreadable answer
    NETWORK = "network"  # timeout, dropped connection
    BREAKER_OPEN = "breaker_open"
    BUDGET = "budget"  # our own count of the day's calls is spent

    @property
    def throttled(self) -> bool:
        """Zoho is healthy, we were too fast."""
        return self in (ErrorKind.RATE_LIMIT, ErrorKind.DAILY_LIMIT, ErrorKind.CONCURRENCY)

    @property
    def zoho_unwell(self) -> bool:
        """What the breaker counts and the client retries with a backoff."""
        return self in (ErrorKind.SERVER, ErrorKind.NETWORK)


_THROTTLES = {
    CODE_RATE_LIMIT: ErrorKind.RATE_LIMIT,
    CODE_DAILY_LIMIT: ErrorKind.DAILY_LIMIT,
    CODE_CONCURRENCY: ErrorKind.CONCURRENCY,
}


class ZohoError(Exception):
    """A call to Zoho that did not give us the data.

    `permanent` errors are about the request (400, 404): retrying cannot help, the queue
    dead-letters them. Everything else is an infrastructure wait: the queue retries the row and
    refunds the attempt. `kind` says why (ErrorKind).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind | str,
        permanent: bool = False,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.permanent = permanent
        self.status = status
        self.code = code
        self.retry_after = retry_after  # seconds Zoho asked us to wait, when it said so

    def __reduce__(self):
        # Keyword-only arguments defeat Exception's default pickling (django-q2 pickles task errors).
        return (partial(ZohoError, kind=str(self.kind)), (str(self),), self.__dict__)

    def __repr__(self) -> str:
        return f"ZohoError({str(self)!r}, kind={str(self.kind)!r}, status={self.status}, code={self.code})"


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
    if status == 401:
        # Code 57 on a 401 is also what a token Zoho invalidated early gets (as others running Zoho
        # integrations report): the client refreshes once and only a refused fresh token is an auth
        # failure.
        raise ZohoError(message, kind=ErrorKind.AUTH, **options)
    if code == CODE_NOT_AUTHORISED:
        # A missing OAuth scope on an accepted token: a new token has the same scopes, so no
        # refresh. The data is fine; an operator must grant the scope, so no dead-lettering.
        raise ZohoError(message, kind=ErrorKind.SCOPE, **options)
    if code in _THROTTLES or status == 429:
        kind = _THROTTLES.get(code, ErrorKind.RATE_LIMIT)
        raise ZohoError(message, kind=kind, retry_after=_retry_after(response), **options)
    if status >= 500 or code == CODE_INTERNAL or body is None:
        raise ZohoError(message, kind=ErrorKind.SERVER, **options)
    if status == 404 or code == CODE_NOT_FOUND:
        raise ZohoError(message, kind=ErrorKind.NOT_FOUND, permanent=True, **options)
    raise ZohoError(message, kind=ErrorKind.REJECTED, permanent=True, **options)
