"""Logging in to Kite from a browser, mirroring api/upstox_login.py.

    GET /kite/login     an API key (X-API-KEY header or ?apikey=) -> 302 to Kite's login page
                        with a one-time state in redirect_params; no key -> 403
    GET /kite/callback  Kite's redirect (?request_token=&status=&state=): the state must be one
                        this gateway issued; stores the token; JSON, or a small page for a browser
"""
from __future__ import annotations

import html

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.exceptions import NotFound

from openalgo_gtt.api.auth import authenticate, presented_key
from openalgo_gtt.api.errors import ApiError
from openalgo_gtt.api.lifecycle import context, error_response, json_response
from openalgo_gtt.services.kite_login import KiteLogin
from openalgo_gtt.services.upstox_login import LoginError

bp = Blueprint("kite_login", __name__, url_prefix="/kite")


def _login() -> KiteLogin:
    login = current_app.extensions["openalgo_gtt"].kite_login
    if login is None:
        raise LoginError("Kite login is not available: this gateway's broker is not Kite (BROKER=kite)", status=503)
    return login


@bp.errorhandler(LoginError)
def _login_error(exc: LoginError):
    return error_response(ApiError(exc.status, exc.message, broker_code=exc.code))


@bp.get("/login")
def login():
    authenticate(presented_key())  # only an API key holder may start a login
    url, _state = _login().begin()
    return redirect(url, code=302)


@bp.get("/callback")
def callback():
    if current_app.extensions["openalgo_gtt"].kite_login is None:
        raise NotFound()  # unauthenticated: the same answer as any unknown path, no word of the broker
    args = request.args
    result = _login().complete(args.get("request_token"), args.get("state"), args.get("status"))
    body = {"status": "success", "message": "Logged in to Kite: access token stored", **result.as_dict()}
    if any(value == "text/html" for value in request.accept_mimetypes.values()):
        context().audit_response = body
        expires = html.escape(body["token_expires_at"])
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>Logged in to Kite</title></head>"
                f"<body><h1>Logged in to Kite</h1><p>The access token is stored and valid until {expires} IST "
                "(Kite ends every token at 06:00 IST).</p><p>You can close this tab.</p></body></html>")
        return Response(page, status=200, mimetype="text/html")
    return json_response(body)
