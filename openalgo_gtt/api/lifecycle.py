"""What happens around every request: its context (a request id, the audit's view of it), the
error envelope, the audit record, and the work a use case leaves for after the answer.

The one typed `RequestContext` (services/context.py) lives on `flask.g` under a single name;
`context()` is how the rest of api/ reaches it, and views hand it to the use cases.
"""
from __future__ import annotations

import json
import logging
import traceback
import uuid

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from openalgo_gtt.api.body import request_json_or_none
from openalgo_gtt.api.errors import error_status_and_body
from openalgo_gtt.brokers import deadline as broker_deadline
from openalgo_gtt.services.audit import collect_broker_calls, redact_query, stop_collecting_broker_calls
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.domain.encoding import dumps
from openalgo_gtt.logging_setup import EveryInterval

log = logging.getLogger(__name__)
# An unexpected error is a line with its request id (the traceback is in the audit row), at most
# once a minute per kind: a caller repeating it cannot make the log grow faster than the audit.
_failures = EveryInterval(log, seconds=60.0)

REQUEST_ID_HEADER = "X-Request-ID"
# Paths that are not API requests: polled health checks and the docs are not audited.
UNAUDITED_PREFIXES = ("/api/health", "/api/docs", "/api/swagger.json", "/swaggerui")
# Paths whose last segment is a secret (Upstox cannot send an API key, so the URL carries one).
SECRET_PATH_PREFIXES = ("/upstox/postback/", "/upstox/notifier/")
_CONTEXT = "openalgo_gtt_context"


def context() -> RequestContext:
    """The context of the request being handled (made in before_request, or on first use by a
    hook that runs before it)."""
    ctx = g.get(_CONTEXT)
    if ctx is None:
        ctx = RequestContext(request_id=str(uuid.uuid4()), method=request.method, endpoint=_path_for_audit(),
                             client_addr=request.remote_addr, audit_body=_request_body_for_audit)
        setattr(g, _CONTEXT, ctx)
    return ctx


def json_response(body, status: int = 200, headers=None) -> Response:
    """Serialise once; dict bodies gain the request id, and the body is kept for the audit."""
    ctx = context()
    if isinstance(body, dict):
        body.setdefault("request_id", ctx.request_id)
    if ctx.audit_response is None:
        ctx.audit_response = body
    response = current_app.response_class(dumps(body), status=status, mimetype="application/json")
    if headers:
        response.headers.extend(headers)
    if status >= 400 and isinstance(body, dict) and isinstance(body.get("retry_after"), int):
        response.headers.setdefault("Retry-After", str(body["retry_after"]))  # a 503 settling, a 429
    return response


def note_error(exc: BaseException) -> tuple[dict, int]:
    """The error envelope for `exc`; what went wrong is kept on the context for the audit."""
    ctx = context()
    status, body = error_status_and_body(exc)
    if status == 500 and not isinstance(exc, HTTPException):  # unexpected: keep the whole trace
        ctx.error = f"{type(exc).__name__}: {exc}"
        ctx.traceback = "".join(traceback.format_exception(exc))
        _failures.error(type(exc).__name__, "request %s failed: %s", ctx.request_id, ctx.error[:300])
    else:
        ctx.error = body.get("message")
    if request.path.startswith("/api/gtt/"):
        body["success"] = False  # the seed engine's callers look for this flag
    return body, status


def error_response(exc: BaseException) -> Response:
    return json_response(*note_error(exc))


# The trader's page (api/dashboard): each action it takes (a POST: sign in and out, place,
# modify, cancel, a sandbox price) and the Upstox login it starts is audited like an API request;
# the page itself, its polls and its static files are not.
PAGE_ACTION_PREFIX = "/ui/"
PAGE_AUDITED_GETS = frozenset({"/ui/upstox/login"})


def _audited() -> bool:
    path = request.path
    if path.startswith(PAGE_ACTION_PREFIX):
        return request.method == "POST" or path in PAGE_AUDITED_GETS
    return path.startswith("/api/") and not path.startswith(UNAUDITED_PREFIXES) or path.startswith(("/upstox/", "/kite/"))


def install(app: Flask) -> None:
    @app.before_request
    def _begin():
        collect_broker_calls(context().broker_calls)
        # Everything this request asks of the broker shares one deadline (brokers/deadline.py):
        # the caller's patience (a place that cannot be sent within it is queued).
        settings = current_app.extensions["openalgo_gtt"].settings
        broker_deadline.start(settings.patience(text_plain=request.mimetype == "text/plain"))

    @app.after_request
    def _finish(response: Response) -> Response:
        ctx = context()
        response.headers[REQUEST_ID_HEADER] = ctx.request_id
        if _audited() and not ctx.audit_written:  # a place writes it with its outcome
            current_app.extensions["openalgo_gtt"].audit.record(ctx, response.status_code,
                                                                _response_for_audit(ctx, response))
        stop_collecting_broker_calls()
        broker_deadline.clear()
        return response

    app.register_error_handler(Exception, error_response)


def _response_for_audit(ctx: RequestContext, response: Response):
    if ctx.audit_response is not None:
        return ctx.audit_response
    if response.mimetype == "application/json" and not response.direct_passthrough:
        try:
            return json.loads(response.get_data())
        except ValueError:
            return None
    return None


def _path_for_audit() -> str:
    """The request path with any URL secret (webhook paths) masked."""
    path = request.path
    for prefix in SECRET_PATH_PREFIXES:
        if path.startswith(prefix):
            return prefix + "***"
    return path


def _request_body_for_audit(status: int):
    if status == 413:
        return {"unparsed_body": "(over the 1 MiB limit: not read)"}
    if request.method == "GET":  # a query string's secrets (the Upstox login's code and state) masked
        return redact_query(dict(request.args)) or None
    return request_json_or_none(request)
