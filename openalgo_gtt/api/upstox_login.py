"""Logging in to Upstox from a browser, and receiving the token Upstox pushes after an approval.

    GET  /upstox/login              an API key (X-API-KEY header or ?apikey=) -> 302 to Upstox's
                                    authorization dialog with a one-time state; no key -> 403
    GET  /upstox/callback           Upstox's redirect (?code=&state=): protected by the state,
                                    stores the token; JSON, or a small HTML page for a browser
    POST /upstox/token-request      an API key -> ask Upstox to send an approval request to the
                                    Upstox app (v3 access-token request)
    POST /upstox/notifier/<secret>  Upstox's notifier webhook (the secret derives from the pepper);
                                    a wrong secret is a plain 404

Errors are the API's envelope `{"status": "error", "message": ...}`; every request is audited
(the audit masks the notifier secret: lifecycle.SECRET_PATH_PREFIXES).
"""
from __future__ import annotations

import html

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.exceptions import NotFound

from openalgo_gtt.api.auth import authenticate, caller_from_anywhere, presented_key
from openalgo_gtt.api.body import request_json
from openalgo_gtt.api.errors import ApiError
from openalgo_gtt.api.lifecycle import context, error_response, json_response
from openalgo_gtt.services.upstox_login import LoginError, UpstoxLogin

bp = Blueprint("upstox_login", __name__, url_prefix="/upstox")

def _login() -> UpstoxLogin:
    return current_app.extensions["openalgo_gtt"].upstox_login


@bp.errorhandler(LoginError)
def _login_error(exc: LoginError):
    return error_response(ApiError(exc.status, exc.message, broker_code=exc.code))


@bp.get("/login")
def login():
    # Only an API key holder may start a login; a GET never reads a body.
    authenticate(presented_key())
    url, _state = _login().begin()
    return redirect(url, code=302)


@bp.get("/callback")
def callback():
    result = _login().complete(request.args.get("code"), request.args.get("state"))
    body = {"status": "success", "message": "Logged in to Upstox: access token stored", **result.as_dict()}
    if _wants_html():
        context().audit_response = body  # the audit record keeps the JSON form
        expires = html.escape(body["token_expires_at"])
        warnings = "".join(f"<p><strong>Warning:</strong> {html.escape(w)}</p>" for w in result.warnings)
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>Logged in to Upstox</title></head>"
                f"<body><h1>Logged in to Upstox</h1><p>The access token is stored and valid until {expires} IST "
                f"(Upstox ends every token at 03:30 IST).</p>{warnings}<p>You can close this tab.</p></body></html>")
        return Response(page, status=200, mimetype="text/html")
    return json_response(body)


@bp.post("/token-request")
def token_request():
    caller_from_anywhere()
    login = _login()
    sent = login.request_app_token()
    body = {
        "status": "success",
        "message": "Approve the access-token request in the Upstox app; Upstox then delivers the token "
                   "to the notifier URL set on your Upstox app",
        **sent.as_dict(),
        "notifier_path": login.notifier_path,
    }
    if not (sent.notifier_url or "").rstrip("/").endswith(login.notifier_path):
        body["warnings"] = [(f"Upstox will not deliver the token here: set the Upstox app's notifier URL to "
                             f"this service's public address followed by {login.notifier_path}")]
    return json_response({k: v for k, v in body.items() if v is not None})


@bp.post("/notifier/<secret>")
def notifier(secret: str):
    login = _login()
    if not login.verify_notifier_secret(secret):
        raise NotFound()  # the same answer as any unknown path
    result = login.accept_notification(request_json(request))
    return json_response({"status": "success", "message": "Upstox access token stored", **result.as_dict()})


def _wants_html() -> bool:
    """A browser asks for text/html by name; API clients and tests do not."""
    return any(value == "text/html" for value in request.accept_mimetypes.values())
