"""The caller's API key, read in one place: `apikey` in the JSON body on /api/v1 (OpenAlgo), or an
X-API-KEY header, an `apikey` query parameter or the body's `apikey` on the other routes (the
seed engine's, the Upstox login). The rate limits and the failed-key throttle (ratelimits.py)
read it with `presented_key()` too, so they count exactly the key the view checks."""
from __future__ import annotations

from flask import current_app, g, request
from werkzeug.exceptions import HTTPException

from openalgo_gtt.api.body import request_json
from openalgo_gtt.api.errors import INVALID_APIKEY, ApiError, Forbidden
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.services.apikeys import ApiKeyService, Caller, IdentifierBusy, KeyCheckBusy

KEY_CHECK_BUSY = "API key check busy; retry in a second"
IDENTIFIER_BUSY = ("This API key's identifier is being checked, or had too many wrong secrets; "
                   "retry after {seconds} s")
FORM_KEY_PATH = "/ui/signin"  # the trader's page signs in with a form (api/dashboard)


def api_keys() -> ApiKeyService:
    return current_app.extensions["openalgo_gtt"].api_keys


def presented_key() -> str | None:
    """The API key the request presents, or None when there is none (or it is not a string, or
    the body cannot be read: the view says why). Read once per request."""
    if "presented_key" in g:
        return g.presented_key
    key = None
    if request.path == FORM_KEY_PATH and request.method == "POST":
        key = request.form.get("apikey")  # the page's sign-in form: a form field, never the URL
    elif not request.path.startswith("/api/v1/"):
        key = request.headers.get("X-API-KEY") or request.args.get("apikey")
    if not key and request.method != "GET":
        try:
            if request.get_data(cache=True).strip():
                key = request_json(request).get("apikey")
        except (ApiError, HTTPException):  # not JSON, or over the size limit
            key = None
    g.presented_key = key if isinstance(key, str) and key.strip() else None
    return g.presented_key


def verify_key(key: object, *, old_key_pass: bool = True) -> Caller | None:
    """The caller `key` belongs to, or None; a 503 when the check cannot run now, a 429 when its
    identifier may not be checked yet. A presented key found wrong is noted on the request
    (`key_check_failed`): the failed-key throttle counts every such check, whatever else the
    request got wrong (a sign-in form without its token, say)."""
    try:
        caller = api_keys().verify(key, old_key_pass=old_key_pass)
    except KeyCheckBusy:
        raise ApiError(503, KEY_CHECK_BUSY) from None
    except IdentifierBusy as busy:
        raise ApiError(429, IDENTIFIER_BUSY.format(seconds=busy.retry_after), retry_after=busy.retry_after) from None
    if caller is None and isinstance(key, str) and key.strip():
        g.key_check_failed = True
    return caller


def key_check_failed() -> bool:
    """Whether a key presented in this request was checked and found wrong."""
    return bool(g.get("key_check_failed"))


def authenticate(key: object) -> Caller:
    caller = verify_key(key)
    if caller is None:
        raise Forbidden(INVALID_APIKEY)
    context().api_key_name = caller.name
    return caller


def caller_from_body() -> tuple[Caller, dict]:
    """Authenticate an OpenAlgo request; returns the caller and the parsed body."""
    body = request_json(request)  # a body that is not a JSON object: 400 before any key check
    return authenticate(presented_key()), body


def caller_from_anywhere() -> Caller:
    """The seed engine's routes take the key from a header, the query or the body."""
    key = presented_key()
    if key is None and request.method != "GET" and request.get_data(cache=True).strip():
        request_json(request)  # a body that is not JSON is a 400, as it always was
    return authenticate(key)
