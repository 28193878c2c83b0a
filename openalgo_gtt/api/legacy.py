"""The seed Upstox GTT Engine's routes, on the same services, with the seed's answer shapes.

`GET|POST /api/gtt/place`, `GET|POST /api/gtt/cancel`, `GET /api/gtt/orders?status=...`.
The key comes from an X-API-KEY header, an `apikey` query parameter or the JSON body.
Parameters are as strict as the OpenAlgo bodies' (api/schemas.py), and errors name them as the
seed does (`qty`, `transaction_type`); text parameters must be strings.
"""
from __future__ import annotations

from flask import current_app, request
from flask_restx import Namespace, Resource

from openalgo_gtt.api.auth import caller_from_anywhere
from openalgo_gtt.api.body import request_json
from openalgo_gtt.api.errors import BadRequest
from openalgo_gtt.api.idempotency import idempotency_key
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.api.schemas import PlaceGttBody, validate
from openalgo_gtt.domain.clock import ist_text
from openalgo_gtt.services.answers import LEGACY_PLACE, seed_answer
from openalgo_gtt.services.planner import Order

ns = Namespace("gtt", path="/gtt", description="The seed Upstox GTT Engine's routes (key in X-API-KEY, query or body)")

SEED_PRODUCTS = {"I": "MIS", "D": "CNC"}
SEED_NAMES = {"quantity": "qty", "action": "transaction_type"}  # PlaceGttBody's field -> the seed's
MAX_TEXT = 64


def _text(params: dict, name: str) -> str:
    """A text parameter, stripped; "" when absent. Anything but a string is a 400 naming it."""
    value = params.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", errors=[{"field": name, "message": "must be a string"}])
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{name} must be at most {MAX_TEXT} characters",
                         errors=[{"field": name, "message": f"must be at most {MAX_TEXT} characters"}])
    return value


def _params() -> dict:
    """Query parameters and, for a POST with a body, the JSON body on top of them."""
    values = {k: v for k, v in request.args.items()}
    if request.method == "POST" and request.get_data(cache=True).strip():
        values.update(request_json(request))
    return values


def _gateway():
    return current_app.extensions["openalgo_gtt"]


@ns.route("/place")
class LegacyPlace(Resource):
    def get(self):
        """Place an auto bracket (entry = open + 4%, target and stop-loss 1% away), or manual."""
        return self.post()

    def post(self):
        caller_from_anywhere()
        params = _params()
        instrument = _gateway().instruments.by_key(_text(params, "instrument"))
        if instrument is None:
            raise BadRequest("instrument must be a known instrument key: Upstox's, e.g. NSE_EQ|INE669E01016, "
                             "or Kite's EXCHANGE:TRADINGSYMBOL, e.g. NSE:INFY")
        product = SEED_PRODUCTS.get((_text(params, "product") or "D").upper())
        if product is None:
            raise BadRequest("product must be I (intraday) or D (delivery)")
        if instrument.is_derivative and product == "CNC":
            product = "NRML"
        body = validate(PlaceGttBody, {
            **{k: v for k, v in params.items() if k in PlaceGttBody.model_fields},
            "apikey": "-", "trigger_type": "BRACKET", "symbol": instrument.symbol,
            "exchange": instrument.exchange, "action": params.get("transaction_type"),
            "quantity": params.get("qty"), "product": product,
        }, names=SEED_NAMES)
        order = Order(instrument.symbol, instrument.exchange, body.intent(), body.strategy, body.force)
        return _gateway().place(context(), order, params, idempotency_key(params), endpoint=LEGACY_PLACE,
                                render=seed_answer)


@ns.route("/cancel")
class LegacyCancel(Resource):
    def get(self):
        """Cancel a GTT by `gtt_id`."""
        return self.post()

    def post(self):
        caller_from_anywhere()
        gtt_id = _text(_params(), "gtt_id")
        if not gtt_id:
            raise BadRequest("gtt_id is required")
        _gateway().gtts.cancel(gtt_id)
        return {"success": True, "gtt_id": gtt_id, "status": "CANCELLED"}


@ns.route("/orders")
class LegacyOrders(Resource):
    def get(self):
        """The GTTs this gateway placed; `?status=ACTIVE|CANCELLED|TRIGGERED|EXPIRED|REJECTED`."""
        caller_from_anywhere()
        status = (request.args.get("status") or "").strip().lower() or None
        orders = _gateway().gtts.recorded(status)
        return {
            "success": True,
            "count": len(orders),
            "orders": [
                {
                    "gtt_id": o.trigger_id, "status": o.status.upper(), "symbol": o.symbol,
                    "exchange": o.exchange, "trigger_type": o.trigger_type, "action": o.action,
                    "quantity": o.quantity, "placed_at": ist_text(o.placed_at),
                    "cancelled_at": ist_text(o.cancelled_at) or None, "request_id": o.request_id,
                }
                for o in orders
            ],
        }
