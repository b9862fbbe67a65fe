"""gunicorn's access log without secrets: the logger class the root's gunicorn.conf.py names.

Kept apart from tdscore.logs so that only gunicorn's processes import gunicorn.
"""

from __future__ import annotations

from gunicorn.glogging import Logger as GunicornLogger

from tdscore.logs import REDACTED, redact


class RedactingGunicornLogger(GunicornLogger):
    """gunicorn's logger with every access-log atom redacted: the request line and query string
    carry `?token=`, and request-header atoms (`{authorization}i`) whatever they hold."""

    SECRET_ATOMS = frozenset(
        {"{authorization}i", "{x-tds-token}i", "{cookie}i"}
        | {"{http_authorization}e", "{http_x_tds_token}e", "{http_cookie}e"}
    )

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            name: REDACTED if name in self.SECRET_ATOMS else self._redacted(name, value)
            for name, value in atoms.items()
        }

    @staticmethod
    def _redacted(name: str, value):
        if not isinstance(value, str):
            return value
        if name == "q":  # the query string alone: its first parameter has no `?` before it
            return redact(f"?{value}")[1:]
        return redact(value)
