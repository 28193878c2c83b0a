"""The application factory: configuration is an argument, nothing happens at import time.

Routing is strict, because werkzeug's conveniences are an attacker's tools:

- Methods: a route answers exactly the methods it documents; anything else is a 405 JSON error
  with an Allow header. werkzeug gives every GET route HEAD (answered by running the GET view),
  so HEAD stays only where GET merely reads (HEAD_ENDPOINTS); Flask's automatic OPTIONS is off.
- No redirects: werkzeug answers a doubled slash or a missing trailing slash with a 308 to an
  absolute URL built from the request's Host header. Slashes are not merged, and any redirect
  the router would still make is a 404 instead.
"""
from __future__ import annotations

from flask import Flask, Request
from werkzeug.exceptions import NotFound
from werkzeug.routing import RequestRedirect, Rule

from openalgo_gtt import api
from openalgo_gtt.api.body import MAX_BODY_BYTES
from openalgo_gtt.api.security import install_security
from openalgo_gtt.api.trailing_slash import TrailingSlash
from openalgo_gtt.config import Settings, load_settings
from openalgo_gtt.gateway import Gateway

# The endpoints whose GET only reads: health, the docs and their assets, and the seed engine's
# order list. Every other GET (the seed place and cancel, the Upstox login and its callback)
# acts, so HEAD there would act too.
HEAD_ENDPOINTS = frozenset({
    "restx_doc.static", "api.specs", "api.doc", "api.root", "api.health_health",
    "api.gtt_legacy_orders",
})


class GatewayRule(Rule):
    """A route without werkzeug's automatic HEAD, unless its GET only reads."""

    def __init__(self, string: str, **options):
        super().__init__(string, **options)
        if self.methods is not None and self.endpoint not in HEAD_ENDPOINTS:
            self.methods.discard("HEAD")


class GatewayFlask(Flask):
    url_rule_class = GatewayRule

    def log_exception(self, exc_info) -> None:
        """Nothing: flask-restx calls this for every answer of 500 and up, expected ones too (a
        broker refusal before any login is a 503) with their whole traceback. An unexpected
        error is logged once, in one line, by the error envelope (api/lifecycle.py note_error),
        and its traceback kept in the request's audit row."""

    def raise_routing_exception(self, request: Request):
        # The redirect would be to an absolute URL on the request's Host: a 404 instead.
        if isinstance(request.routing_exception, RequestRedirect):
            raise NotFound()
        super().raise_routing_exception(request)


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> Flask:
    settings = settings or (gateway.settings if gateway else load_settings())
    gateway = gateway or Gateway.build(settings)
    app = GatewayFlask(__name__, static_folder=None)  # nothing to serve: no /static route
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        RESTX_MASK_SWAGGER=False,
        RESTX_ERROR_404_HELP=False,
        JSON_SORT_KEYS=False,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    app.url_map.merge_slashes = False
    app.url_map.redirect_defaults = False
    app.extensions["openalgo_gtt"] = gateway
    api.register(app)
    install_security(app, gateway.settings)  # after the API: its hooks need the request id
    app.wsgi_app = TrailingSlash(app.wsgi_app)
    return app
