"""The trader's page session as the HTTP layer sees it: the cookies, the session a request
carries (resolved once per request, also by the rate limits, which count a signed-in page
against its key rather than its address), and the CSRF check.

The rules (tokens, expiry, revocation) are services/page_sessions.py's.
"""
from __future__ import annotations

from datetime import datetime

from flask import Response, current_app, g, request

from openalgo_gtt.services.abuse import path_is_under
from openalgo_gtt.services.page_sessions import PageSession, PageSessions

SESSION_COOKIE = "gtt_session"
SIGNIN_COOKIE = "gtt_signin"  # the sign-in form's own CSRF token (double submit), before a session exists
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
PAGE_PATH = "/"
PAGE_PREFIX = "/ui"


def is_page_request() -> bool:
    return request.path == PAGE_PATH or path_is_under(request.path, (PAGE_PREFIX,))


def sessions() -> PageSessions:
    return current_app.extensions["openalgo_gtt"].page_sessions


def current_session() -> PageSession | None:
    """The live session of this request's cookie (None off the page, or when signed out)."""
    if "page_session" not in g:
        token = request.cookies.get(SESSION_COOKIE) if is_page_request() else None
        g.page_session = sessions().resolve(token) if token else None
    return g.page_session


def csrf_presented() -> object:
    return request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)


def csrf_ok() -> bool:
    token = request.cookies.get(SESSION_COOKIE)
    return bool(token) and sessions().csrf_matches(token, csrf_presented())


def set_cookie(response: Response, name: str, value: str, *, expires: datetime | None = None,
               max_age: int | None = None) -> None:
    """HttpOnly, SameSite=Strict, and Secure when the page was reached over https (behind
    TRUSTED_PROXIES, as X-Forwarded-Proto says)."""
    response.set_cookie(name, value, max_age=max_age, expires=expires, path="/", secure=request.is_secure,
                        httponly=True, samesite="Strict")


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=request.is_secure, httponly=True, samesite="Strict")
