"""GET /api/health: is the service up, which broker, how many trades today, is the store reachable."""
from __future__ import annotations

from flask import current_app
from flask_restx import Namespace, Resource, fields
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from openalgo_gtt.api.lifecycle import json_response
from openalgo_gtt.domain.clock import ist_today
from openalgo_gtt.store.models import TradeCounter

ns = Namespace("health", path="/", description="Service status (no API key needed)")

health_model = ns.model(
    "Health",
    {
        "status": fields.String(example="ok", description="ok, or error when the database is unreachable"),
        "service": fields.String(example="openalgo-gtt"),
        "broker": fields.String(enum=["upstox", "sandbox"]),
        "today_trade_count": fields.Integer(description="successful places today (IST)"),
        "daily_trade_limit": fields.Integer,
        "database": fields.String(example="ok"),
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
        gateway = current_app.extensions["openalgo_gtt"]
        body = {
            "status": "ok",
            "service": "openalgo-gtt",
            "broker": gateway.settings.broker,
            "today_trade_count": 0,
            "daily_trade_limit": gateway.settings.daily_trade_limit,
            "database": "ok",
        }
        try:
            with gateway.sessions() as session:
                session.execute(text("SELECT 1"))
                count = session.scalar(select(TradeCounter.count).where(TradeCounter.day == ist_today()))
            body["today_trade_count"] = count or 0
            if gateway.settings.broker == "upstox":
                body.update(gateway.tokens.describe())
        except SQLAlchemyError as exc:
            body.update(
                status="error",
                database="unreachable",
                message=f"database unreachable: {type(exc.orig or exc).__name__}",
            )
            return json_response(body, 503)
        return json_response(body)
