"""What happens around every request: a request id, the error envelope and the audit record."""
from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from typing import Callable

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from openalgo_gtt.api.body import request_json_or_none
from openalgo_gtt.api.errors import error_status_and_body
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.services.audit import (
    AuditEntry,
    start_collecting_broker_calls,
    stop_collecting_broker_calls,
)
from openalgo_gtt.store.db import dumps

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# Paths that are not API requests: polled health checks and the docs are not audited.
UNAUDITED_PREFIXES = ("/api/health", "/api/docs", "/api/swagger.json", "/swaggerui")
# Paths whose last segment is a secret (Upstox cannot send an API key, so the URL carries one).
SECRET_PATH_PREFIXES = ("/upstox/postback/", "/upstox/notifier/")


def json_response(body, status: int = 200, headers=None) -> Response:
    """Serialise once; dict bodies gain the request id, and the body is kept for the audit."""
    if isinstance(body, dict) and "request_id" in g:
        body.setdefault("request_id", g.request_id)
    g.response_body = body
    response = current_app.response_class(dumps(body), status=status, mimetype="application/json")
    if headers:
        response.headers.extend(headers)
    return response


def note_error(exc: BaseException) -> tuple[dict, int]:
    """The error envelope for `exc`; what went wrong is kept on `g` for the audit record."""
    status, body = error_status_and_body(exc)
    if status == 500 and not isinstance(exc, HTTPException):  # unexpected: keep the whole trace
        g.error = f"{type(exc).__name__}: {exc}"
        g.traceback = "".join(traceback.format_exception(exc))
        log.error("request %s failed: %s", g.get("request_id"), g.error)
    else:
        g.error = body.get("message")
    if g.get("legacy"):
        body["success"] = False  # the seed engine's callers look for this flag
    return body, status


def error_response(exc: BaseException) -> Response:
    return json_response(*note_error(exc))


def after_answer(work: Callable[[], None]) -> None:
    """Run `work` once the answer has been handed to the server: in the response's close(),
    which a WSGI server calls after sending the body (waitress and gunicorn both write it from
    the worker thread first). Outside the request: `work` must carry what it needs, and it
    must never raise (what it raises is logged and dropped)."""
    g.setdefault("after_answer", []).append(work)


def _guarded(work: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - the answer has gone; nothing may reach the server now
            log.exception("work after the answer failed")
    return run


def _audited() -> bool:
    return request.path.startswith("/api/") and not request.path.startswith(UNAUDITED_PREFIXES) or (
        request.path.startswith("/upstox/")
    )


def install(app: Flask) -> None:
    @app.before_request
    def _begin():
        g.request_id = str(uuid.uuid4())
        g.started = time.perf_counter()
        g.broker_calls = start_collecting_broker_calls()
        g.legacy = request.path.startswith("/api/gtt/")  # the seed engine's routes

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        if _audited() and not g.get("audit_written"):  # a place writes it with its outcome
            _write_audit(response)
        stop_collecting_broker_calls()
        for work in g.pop("after_answer", ()):
            response.call_on_close(_guarded(work))
        return response

    app.register_error_handler(Exception, error_response)


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
    if request.method == "GET":
        return dict(request.args) or None
    return request_json_or_none(request)


def _write_audit(response: Response) -> None:
    body = g.get("audit_response") or g.get("response_body")
    if body is None and response.mimetype == "application/json" and not response.direct_passthrough:
        try:
            body = json.loads(response.get_data())
        except ValueError:
            body = None
    current_app.extensions["openalgo_gtt"].audit.write(audit_entry(response.status_code, body))


def audit_entry(status: int, response_body) -> AuditEntry:
    """The audit record of the request being handled, answered with `status` and `response_body`."""
    return AuditEntry(
        request_id=g.get("request_id", str(uuid.uuid4())),
        created_at=utcnow(),
        method=request.method,
        endpoint=_path_for_audit(),
        client_addr=request.remote_addr,
        api_key_name=g.get("api_key_name"),
        request_body=_request_body_for_audit(status),
        response_body=response_body,
        http_status=status,
        latency_ms=(time.perf_counter() - g.get("started", time.perf_counter())) * 1000,
        broker_calls=list(g.get("broker_calls") or []),
        error=g.get("error"),
        traceback=g.get("traceback"),
    )
