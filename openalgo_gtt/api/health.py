"""GET /api/health: is the service up, which broker, how many trades today, is the store reachable."""
from __future__ import annotations

from flask import current_app
from flask_restx import Namespace, Resource, fields

from openalgo_gtt.api.lifecycle import json_response
from openalgo_gtt.services.health import StoreUnavailable

ns = Namespace("health", path="/", description="Service status (no API key needed)")

notifications_model = ns.model(
    "NotificationsHealth",
    {
        "enabled": fields.Boolean(description="NOTIFY_URLS is set"),
        "urls": fields.List(fields.String(example="1: json://127.0.0.1:8080"),
                            description="each URL masked: its scheme, and its host when that names a server"),
        "pending": fields.Integer(description="deliveries not yet made (retried with backoff for 24 h)"),
        "failed": fields.Integer(description="deliveries given up after 24 h"),
        "last_error": fields.String(description="the latest delivery error, secrets removed; null when none"),
        "last_error_at": fields.String(description="IST, YYYY-MM-DD HH:MM:SS"),
    },
)

health_model = ns.model(
    "Health",
    {
        "status": fields.String(example="ok", description="ok, or error when the database is unreachable"),
        "service": fields.String(example="openalgo-gtt"),
        "broker": fields.String(enum=["upstox", "sandbox"]),
        "today_trade_count": fields.Integer(description="successful places today (IST)"),
        "daily_trade_limit": fields.Integer,
        "today_forced_trades": fields.Integer(description="of today's trades, how many `force` took past the limit"),
        "today_trades": fields.String(example="18 of 10, 8 forced", description="today's trades against the limit, "
                                                                                "and how many were forced past it"),
        "database": fields.String(example="ok"),
        "audit_rows": fields.Integer(description="rows in the audit log"),
        "audit_oldest_at": fields.String(description="IST, YYYY-MM-DD HH:MM:SS, of the oldest audit row; "
                                                     "null when there are none"),
        "audit_retention_days": fields.Integer(description="audit rows older than this are deleted; 0 keeps them"),
        "notifications": fields.Nested(notifications_model, description="the notifications outbox"),
        "token": fields.String(enum=["valid", "expired", "missing"],
                               description="the Upstox access token (broker upstox only)"),
        "token_source": fields.String(enum=["keys.json", "environment", "login"]),
        "token_expires_at": fields.String(description="IST, YYYY-MM-DD HH:MM:SS; null when unknown"),
        "request_id": fields.String,
    },
)


@ns.route("/health")
class Health(Resource):
    @ns.response(200, "Healthy", health_model)
    @ns.response(503, "The database is unreachable")
    def get(self):
        health = current_app.extensions["openalgo_gtt"].health
        try:
            return json_response(health.report())
        except StoreUnavailable as exc:
            return json_response({"status": "error", "service": "openalgo-gtt", "database": "unreachable",
                                  "message": str(exc)}, 503)
