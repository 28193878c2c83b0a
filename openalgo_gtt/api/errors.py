"""Errors at the HTTP edge: the use cases' envelope (services/answers.py) plus werkzeug's own
HTTP errors (404, 405, 413...), worded for API callers."""
from __future__ import annotations

from werkzeug.exceptions import HTTPException

from openalgo_gtt.services.answers import (  # noqa: F401 - the API's names for the shared envelope
    INVALID_APIKEY, ApiError, BadRequest, Forbidden, envelope,
)
from openalgo_gtt.services.answers import error_status_and_body as use_case_error

_HTTP_MESSAGES = {
    404: "Not found: see /api/docs for the endpoints this service offers",
    405: "Method not allowed for this endpoint",
    413: "Request body too large (limit 1 MiB)",
    429: "Too many requests; try again shortly",
}


def error_status_and_body(exc: BaseException) -> tuple[int, dict]:
    """(HTTP status, JSON body) for any exception; unexpected ones are a plain 500."""
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return status, envelope(_HTTP_MESSAGES.get(status, exc.name))
    return use_case_error(exc)
