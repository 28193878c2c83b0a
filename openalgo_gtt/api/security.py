"""Abuse and bad-input defences around every request, installed by `install_security(app)`.

- TRUSTED_PROXIES=N: the last N X-Forwarded-For (and X-Forwarded-Proto) hops are believed
  (werkzeug's ProxyFix), so `request.remote_addr` is the real client behind ngrok or nginx.
- ALLOWED_IPS: when set, every other address gets 403 `address not allowed`.
- Caller rate limits and the failed-key throttle (api/ratelimits.py).
- Every request body (whatever the method and Content-Type) is parsed once, here, before any
  view: one nested deeper than body.MAX_DEPTH is a 400 naming the limit, on every route, with a
  key or without. A body that is merely not JSON is left to the view (routes that take no body
  ignore it).
- NUL characters (\u0000) anywhere in the path, the query or the JSON body: 400. PostgreSQL cannot store
  them in text, so one reaching a query or an insert would be a 500, or worse, a GTT placed at
  the broker that the store then fails to record. A lone surrogate (\ud800, which JSON allows
  and UTF-8 cannot encode) anywhere in the body but the `apikey` is a 400 for the same reason;
  in the `apikey` it is a wrong key, a 403, like any other.
- A wrong method's 405 carries the Allow header (the error envelope replaces werkzeug's answer).
- Response headers for an API on every response: nosniff, no framing, no caching, no referrer
  and a Content-Security-Policy that allows nothing; the Swagger UI (/api/docs and its
  /swaggerui/ assets) gets a policy that allows exactly what it loads from this server.

Call it after `api.register(app)`: its hooks must run after the life cycle's request id.
"""
from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

from openalgo_gtt.api.body import BodyTooDeep, request_json, walk_strings
from openalgo_gtt.api.errors import ApiError, BadRequest
from openalgo_gtt.api.page_session import is_page_request
from openalgo_gtt.api.ratelimits import RateLimits, install_rate_limits
from openalgo_gtt.services.abuse import AddressFilter, SecurityPolicy, path_is_under

ADDRESS_NOT_ALLOWED = "address not allowed"
NUL_REFUSED = "Request must not contain NUL characters (\\u0000)"
SURROGATE_REFUSED = "Request must be valid Unicode: a lone surrogate (\\ud800-\\udfff) cannot be stored"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_PREFIXES = ("/api/docs", "/swaggerui/")
# The Swagger UI page: scripts, styles, fonts and images from /swaggerui/ on this server, its one
# inline script by hash, inline styles (Swagger UI sets style attributes), data: images (its CSS
# icons), and fetches of /api/swagger.json and "Try it out" calls to this server only.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The trader's page (/ and /ui/): its own vendored scripts and styles only (no inline script or
# style, no eval), its own fragments fetched by htmx, its forms posted to itself, never framed.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP source expressions ('sha256-...') for every inline <script> in `html`."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
        if body.strip()
    ]


def content_security_policy(response: Response) -> str:
    if is_page_request():
        return PAGE_CSP
    if not path_is_under(request.path, DOCS_PREFIXES):
        return API_CSP
    hashes = ""
    if response.mimetype == "text/html" and not response.direct_passthrough:
        hashes = "".join(" " + h for h in inline_script_hashes(response.get_data()))
    return DOCS_CSP.format(hashes=hashes)


def _security_headers(response: Response) -> Response:
    for name, value in API_HEADERS.items():
        response.headers[name] = value
    response.headers["Content-Security-Policy"] = content_security_policy(response)
    return response


def contains_nul(value) -> bool:
    """Whether a parsed JSON value holds a NUL in any string or key (iterative: any depth)."""
    return any("\x00" in text for text in walk_strings(value))


def _refuse_bad_input() -> None:
    """NULs in the path or the query; for any body: the nesting limit, then NULs."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        raise BadRequest(NUL_REFUSED)
    try:
        if not request.get_data(cache=True).strip():
            return
        body = request_json(request)
    except BodyTooDeep:
        raise
    except (ApiError, HTTPException):  # not JSON or too large: the view answers that
        return
    if contains_nul(body):
        raise BadRequest(NUL_REFUSED)
    if contains_lone_surrogate(body):
        raise BadRequest(SURROGATE_REFUSED)


def contains_lone_surrogate(body) -> bool:
    """Whether any string or key outside the top-level `apikey` holds a lone surrogate."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "apikey"}
    return any(_LONE_SURROGATE.search(text) for text in walk_strings(body))


def _allow_header(response: Response) -> Response:
    exc = request.routing_exception
    if response.status_code == 405 and isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response


class Security:
    """What install_security() put in place (app.extensions["openalgo_gtt_security"])."""

    def __init__(self, policy: SecurityPolicy, addresses: AddressFilter, rate_limits: RateLimits):
        self.policy = policy
        self.addresses = addresses
        self.rate_limits = rate_limits


def install_security(app: Flask, settings=None, *, policy: SecurityPolicy | None = None) -> Security:
    """Install every defence on `app` (after api.register). `settings` defaults to the gateway's;
    `policy` (tests) replaces what the settings say."""
    if "openalgo_gtt_security" in app.extensions:
        raise RuntimeError("install_security: already installed on this app")
    if policy is None:
        settings = settings or app.extensions["openalgo_gtt"].settings
        policy = SecurityPolicy.from_settings(settings)
    if policy.trusted_proxies:
        n = policy.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    addresses = AddressFilter(policy.allowed_ips)
    if addresses.active:

        @app.before_request
        def _allowed_address():
            if not addresses.allows(request.remote_addr):
                raise ApiError(403, ADDRESS_NOT_ALLOWED)

    rate_limits = install_rate_limits(app, policy)
    app.before_request(_refuse_bad_input)  # after the limits: junk still counts against them
    app.after_request(_security_headers)
    app.after_request(_allow_header)
    security = Security(policy, addresses, rate_limits)
    app.extensions["openalgo_gtt_security"] = security
    return security

