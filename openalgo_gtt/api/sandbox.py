"""POST /api/v1/sandbox/ticks: prices for the sandbox broker (analyzer mode)."""
from __future__ import annotations

from flask import current_app
from flask_restx import Namespace, Resource, fields
from pydantic import BaseModel, ConfigDict, Field

from openalgo_gtt.api.auth import caller_from_body
from openalgo_gtt.api.errors import ApiError
from openalgo_gtt.api.openapi import swagger2_schema
from openalgo_gtt.api.schemas import Body, PositivePrice, Text, validate
from openalgo_gtt.services.sandbox_feed import NotSandbox, PriceTick, push_ticks

ns = Namespace("sandbox", path="/v1/sandbox", description="The sandbox broker: push prices, watch triggers fire")


class TickIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    symbol: Text
    exchange: Text
    ltp: PositivePrice
    open: PositivePrice | None = None


class TicksBody(Body):
    ticks: list[TickIn] = Field(min_length=1, max_length=10_000)


ticks_body = ns.schema_model("SandboxTicks", swagger2_schema(TicksBody))
fired_model = ns.model("SandboxFill", {
    "gtt_id": fields.String, "strategy": fields.String, "symbol": fields.String, "exchange": fields.String,
    "transaction_type": fields.String, "quantity": fields.Integer, "price": fields.Float,
    "ltp": fields.Float, "order_id": fields.String,
})
ticks_answer = ns.model("SandboxTicksApplied", {
    "status": fields.String(example="success"), "mode": fields.String(example="analyze"), "applied": fields.Integer,
    "fired": fields.List(fields.Nested(fired_model)), "request_id": fields.String,
})


@ns.route("/ticks")
class SandboxTicks(Resource):
    @ns.expect(ticks_body, validate=False)
    @ns.response(200, "Ticks applied, with every rule they fired", ticks_answer)
    @ns.response(409, "The gateway is not in sandbox mode")
    def post(self):
        """Push last prices (and optionally today's open); triggers crossed by a tick fire."""
        _, raw = caller_from_body()
        body = validate(TicksBody, raw)
        gateway = current_app.extensions["openalgo_gtt"]
        ticks = [PriceTick(t.symbol, t.exchange, t.ltp, t.open) for t in body.ticks]
        try:
            fired = push_ticks(gateway, ticks)
        except NotSandbox as exc:
            raise ApiError(409, str(exc)) from None
        return {
            "status": "success",
            "mode": "analyze",  # as every /api/v1 success answer on the sandbox
            "applied": len(ticks),
            "fired": [
                {"gtt_id": e.gtt_id, "strategy": e.strategy, **_names(gateway, e.instrument_key),
                 "transaction_type": e.transaction_type, "quantity": e.quantity, "price": e.price,
                 "ltp": e.ltp, "order_id": e.order_id}
                for e in fired
            ],
        }


def _names(gateway, instrument_key: str) -> dict:
    info = gateway.instruments.by_key(instrument_key)
    return {"symbol": info.symbol, "exchange": info.exchange} if info else {"symbol": instrument_key, "exchange": ""}
