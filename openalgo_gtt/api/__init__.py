"""The HTTP API: one flask-restx Api under /api, its Swagger UI at /api/docs."""
from __future__ import annotations

from flask import Blueprint, Flask
from flask_restx import Api

from openalgo_gtt.api import dashboard, health, kite_login, legacy, paper, sandbox, upstox_login, v1, webhooks
from openalgo_gtt.api.lifecycle import install, json_response, note_error


def register(app: Flask) -> Api:
    install(app)
    blueprint = Blueprint("api", __name__, url_prefix="/api")
    api = Api(
        blueprint,
        title="openalgo-gtt",
        version="1",
        description=(
            "OpenAlgo-compatible GTT (Good Till Triggered) orders on Upstox or Kite. Every /api/v1 endpoint "
            "is a POST whose JSON body carries `apikey`; errors are "
            '`{"status": "error", "message": ...}` with the matching HTTP status.'
        ),
        doc="/docs",
    )

    @api.representation("application/json")
    def _output_json(data, code, headers=None):
        return json_response(data, code, headers)

    @api.errorhandler(Exception)
    def _api_error(exc):
        return note_error(exc)  # restx serialises the (body, status) through _output_json

    api.add_namespace(health.ns)
    api.add_namespace(v1.ns)
    api.add_namespace(legacy.ns)
    api.add_namespace(sandbox.ns)
    api.add_namespace(paper.ns)
    app.register_blueprint(blueprint)
    app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(upstox_login.bp)
    app.register_blueprint(kite_login.bp)
    app.register_blueprint(dashboard.bp)  # the trader's page at /
    return api
