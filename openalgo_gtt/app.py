"""The application factory: configuration is an argument, nothing happens at import time."""
from __future__ import annotations

from flask import Flask

from openalgo_gtt import api
from openalgo_gtt.api.body import MAX_BODY_BYTES
from openalgo_gtt.api.security import install_security
from openalgo_gtt.config import Settings, load_settings
from openalgo_gtt.gateway import Gateway


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> Flask:
    settings = settings or (gateway.settings if gateway else load_settings())
    gateway = gateway or Gateway.build(settings)
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        RESTX_MASK_SWAGGER=False,
        RESTX_ERROR_404_HELP=False,
        JSON_SORT_KEYS=False,
    )
    app.extensions["openalgo_gtt"] = gateway
    api.register(app)
    install_security(app, gateway.settings)  # after the API: its hooks need the request id
    return app
