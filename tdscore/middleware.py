"""A database outage is 503 everywhere, never 500.

The webhook receiver and the health endpoints answer their own 503; every other page (the admin,
the dashboard, the API and its schema) reaches the database through sessions, authentication and
querysets anywhere in the view or its template, so the answer is decided here, once: an exception
meaning "the database cannot be reached" (connection refused or lost, no free pooled connection in
time) becomes 503, as the JSON error body under /api/ and a short page elsewhere. Any other
database error is a bug and stays a 500.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

RETRY_AFTER_SECONDS = 30
DETAIL = "the database is unavailable; try again shortly"
# The API answers JSON; its Swagger page is a page for people.
JSON_PREFIXES, HTML_UNDER_JSON = ("/api/", "/webhooks/"), ("/api/docs",)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def unavailable_response(request) -> HttpResponse:
    path = request.path
    if path.startswith(JSON_PREFIXES) and not path.startswith(HTML_UNDER_JSON):
        response = JsonResponse({"status": "error", "error": "database_unavailable", "detail": DETAIL}, status=503)
    else:
        # Rendered without the request: its context processors would ask the database for the user.
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        # django.request logs the 503 itself; the database's message (a host, a role) stays out.
        return unavailable_response(request) if is_outage(exception) else None
