"""What runs around every request on the page: the session and CSRF check (with the audit's view
of a form), the CSRF token for the templates, and an error shown where it happened."""
from __future__ import annotations

from flask import Response, render_template, request
from werkzeug.exceptions import HTTPException

from openalgo_gtt.api.dashboard.blueprint import CSRF_REFUSED, POLL_BOOK, POLL_HEADER, bp, from_htmx
from openalgo_gtt.api.dashboard.book import status_filter
from openalgo_gtt.api.dashboard.page import signin_page
from openalgo_gtt.api.errors import ApiError, BadRequest
from openalgo_gtt.api.lifecycle import context, note_error
from openalgo_gtt.api.page_session import CSRF_FIELD, csrf_ok, current_session
from openalgo_gtt.api.ratelimits import RateLimitRefused
from openalgo_gtt.api.security import NUL_REFUSED
from openalgo_gtt.services.audit import redact

SIGNED_OUT = "Signed out: sign in again"


class NotSignedIn(ApiError):
    def __init__(self):
        super().__init__(401, SIGNED_OUT)


@bp.before_request
def _guard():
    ctx = context()
    # The audit keeps a form as the fields it sent (the key masked, the CSRF token left out).
    ctx.audit_body = lambda _status: redact({k: v for k, v in request.form.items() if k != CSRF_FIELD}) or None
    # As api/security.py refuses them in a query or a JSON body: PostgreSQL cannot store a NUL.
    if any("\x00" in k or "\x00" in v for k, v in request.form.items(multi=True)):
        raise BadRequest(NUL_REFUSED)
    if request.endpoint in ("dashboard.page", "dashboard.signin", "dashboard.static"):
        return None
    session = current_session()
    if session is None:
        raise NotSignedIn()
    ctx.api_key_name = session.caller.name
    if request.method == "POST" and not csrf_ok():
        raise ApiError(403, CSRF_REFUSED)
    return None


@bp.context_processor
def _csrf_token():
    def csrf_token() -> str:
        session = current_session()
        return session.csrf_token if session is not None else ""
    return {"csrf_token": csrf_token}


@bp.errorhandler(Exception)
def _error(exc):
    if isinstance(exc, HTTPException) and exc.code and exc.code < 400:
        return exc
    body, status = note_error(exc)
    context().audit_response = body
    signing_in = request.endpoint in ("dashboard.page", "dashboard.signin")
    if isinstance(exc, NotSignedIn) or (isinstance(exc, RateLimitRefused) and signing_in):
        if from_htmx():
            response = Response(status=status)
            response.headers["HX-Redirect"] = "/"
            return response
        return signin_page(body["message"] if not isinstance(exc, NotSignedIn) else None, status)
    message = render_template("_message.html", kind="error", message=body["message"])
    # A poll that failed (Upstox down, a rate limit) says so in place and goes on polling: the
    # polled element is drawn again around the message instead of being replaced by it.
    if request.endpoint == "dashboard.book":
        book = {"inner": message, "seen": "", "status": status_filter()}
        return render_template("_book.html", book=book, poll_book=POLL_BOOK), status
    if request.endpoint == "dashboard.header":
        return render_template("_header.html", inner=message, seen="", poll_header=POLL_HEADER), status
    if from_htmx():
        return message, status
    return render_template("error.html", message=body["message"]), status
