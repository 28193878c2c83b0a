"""One error envelope everywhere: `{"status": "error", "message": ...}` plus optional details.

Domain and broker exceptions are raised deep and translated to HTTP here, once, at the edge.
"""
from __future__ import annotations

from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """An error the API answers with `status` and a JSON envelope."""

    def __init__(self, status: int, message: str, **details):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


class BadRequest(ApiError):
    def __init__(self, message: str, **details):
        super().__init__(400, message, **details)


class Forbidden(ApiError):
    def __init__(self, message: str = "Invalid openalgo apikey", **details):
        super().__init__(403, message, **details)


INVALID_APIKEY = "Invalid openalgo apikey"

_HTTP_MESSAGES = {
    404: "Not found: see /api/docs for the endpoints this service offers",
    405: "Method not allowed for this endpoint",
    413: "Request body too large (limit 1 MiB)",
}


def envelope(message: str, **details) -> dict:
    body = {"status": "error", "message": message}
    body.update({k: v for k, v in details.items() if v is not None})
    return body


def error_status_and_body(exc: BaseException) -> tuple[int, dict]:
    """(HTTP status, JSON body) for any exception; unexpected ones are a plain 500."""
    if isinstance(exc, ApiError):
        return exc.status, envelope(exc.message, **exc.details)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return status, envelope(_HTTP_MESSAGES.get(status, exc.name))
    return 500, envelope("Internal error: the request was not completed; quote the request_id when reporting it")
