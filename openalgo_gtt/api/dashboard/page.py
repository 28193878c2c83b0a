"""GET / (the whole page, or the sign-in form), and signing in and out with an API key."""
from __future__ import annotations

import secrets

from flask import Response, make_response, redirect, render_template, request

from openalgo_gtt.api.auth import presented_key, verify_key
from openalgo_gtt.api.dashboard.blueprint import (
    CSRF_REFUSED, EXCHANGES, MODES, POLL_BOOK, POLL_HEADER, PRODUCTS, bp, digest_of, from_htmx, on_sandbox,
)
from openalgo_gtt.api.dashboard.book import book_values
from openalgo_gtt.api.dashboard.header import header_values
from openalgo_gtt.api.dashboard.new_gtt import new_form_values
from openalgo_gtt.api.errors import INVALID_APIKEY, ApiError
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.api.page_session import (
    CSRF_FIELD, SESSION_COOKIE, SIGNIN_COOKIE, clear_cookie, current_session, set_cookie, sessions,
)


def signin_page(message: str | None, status: int = 200):
    token = secrets.token_urlsafe(24)
    response = make_response(render_template("signin.html", message=message, signin_csrf=token), status)
    set_cookie(response, SIGNIN_COOKIE, token, max_age=3600)
    return response


@bp.get("/")
def page():
    session = current_session()
    if session is None:
        return signin_page(None)
    header_inner = render_template("_header_inner.html", **header_values())
    return render_template("page.html", session=session, csrf=session.csrf_token, header_inner=header_inner,
                           header_seen=digest_of(header_inner),
                           book=book_values("active"), new=new_form_values(), sandbox=on_sandbox(),
                           exchanges=EXCHANGES, products=PRODUCTS, modes=MODES, poll_book=POLL_BOOK,
                           poll_header=POLL_HEADER)


@bp.post("/ui/signin")
def signin():
    ctx = context()
    expected = request.cookies.get(SIGNIN_COOKIE)
    if not expected or not secrets.compare_digest(expected, str(request.form.get(CSRF_FIELD) or "")):
        raise ApiError(403, CSRF_REFUSED)
    caller = verify_key(presented_key())  # the API's verifier; the throttle counted this request already
    if caller is None:
        ctx.error = INVALID_APIKEY  # the failed-key throttle counts exactly this (api/ratelimits.py)
        ctx.audit_response = {"status": "error", "message": INVALID_APIKEY}
        return signin_page("Invalid API key", 403)
    ctx.api_key_name = caller.name
    started = sessions().start(caller)
    ctx.audit_response = {"status": "success", "message": "signed in",
                          "expires_at": started.session.expires_at.isoformat()}
    response = redirect("/", code=303)
    set_cookie(response, SESSION_COOKIE, started.token, expires=started.session.expires_at,
               max_age=int(sessions().lifetime.total_seconds()))
    clear_cookie(response, SIGNIN_COOKIE)
    return response


@bp.post("/ui/signout")
def signout():
    sessions().end(request.cookies.get(SESSION_COOKIE))
    context().audit_response = {"status": "success", "message": "signed out"}
    response = redirect("/", code=303)
    clear_cookie(response, SESSION_COOKIE)
    if from_htmx():
        response = Response(status=200)
        response.headers["HX-Redirect"] = "/"
        clear_cookie(response, SESSION_COOKIE)
    return response
