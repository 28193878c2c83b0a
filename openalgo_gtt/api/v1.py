"""OpenAlgo's REST dialect: POST /api/v1/<name> with a JSON body carrying `apikey`.

Views only parse, call a service and format; the rules live in `domain/` and `services/`.
"""
from __future__ import annotations

from flask import current_app, request
from flask_restx import Namespace, Resource, fields

from openalgo_gtt.api.auth import caller_from_body
from openalgo_gtt.api.idempotency import idempotency_key
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.api.openapi import NullableString, swagger2_schema
from openalgo_gtt.api.schemas import (
    GttBody, ModifyGttBody, OrderBookBody, PlaceGttBody, StatusBody, TriggerBody, validate,
)
from openalgo_gtt.services.answers import ApiError
from openalgo_gtt.services.planner import Order
from openalgo_gtt.domain.encoding import dumps

ns = Namespace("v1", path="/v1", description="OpenAlgo-compatible endpoints (JSON body with apikey)")

error_model = ns.model(
    "Error",
    {
        "status": fields.String(example="error"),
        "message": fields.String(example="Invalid openalgo apikey"),
        "request_id": fields.String,
    },
)
apikey_model = ns.model("ApiKeyOnly", {"apikey": fields.String(required=True)})
MODE_FIELD = fields.String(example="analyze", description='"analyze" on the sandbox broker; absent on Upstox and Kite')
ping_model = ns.model(
    "Ping",
    {
        "status": fields.String(example="success"),
        "mode": MODE_FIELD,
        "data": fields.Raw(example={"broker": "sandbox", "message": "pong"}),
        "request_id": fields.String,
    },
)
place_body = ns.schema_model("PlaceGtt", swagger2_schema(PlaceGttBody))
modify_body = ns.schema_model("ModifyGtt", swagger2_schema(ModifyGttBody))
trigger_body = ns.schema_model("TriggerId", swagger2_schema(TriggerBody))
book_body = ns.schema_model("GttOrderBookRequest", swagger2_schema(OrderBookBody))
placed_model = ns.model(
    "GttPlaced",
    {
        "status": fields.String(example="success"),
        "mode": MODE_FIELD,
        "trigger_id": fields.String(example="GTT-C26112200000001"),
        "trade_count": fields.Integer(description="successful places today, this one included (place only)"),
        "entry": fields.Float(description="the ENTRY trigger price sent"),
        "target": fields.Float(description="the TARGET price sent (bracket)"),
        "stoploss": fields.Float(description="the STOPLOSS price sent (bracket)"),
        "warnings": fields.List(fields.String, description="what could not be honoured exactly"),
        "contract": fields.String(example="NIFTY29DEC26FUT",
                                  description="the future a continuous ticker (NIFTY1!, NIFTY2!) was placed on"),
        "request_id": fields.String,
    },
)
leg_model = ns.model(
    "GttLeg",
    {
        "action": fields.String, "quantity": fields.Integer, "price": fields.Float,
        "pricetype": fields.String, "product": fields.String, "role": fields.String,
        "trigger_type": fields.String, "status": fields.String, "order_id": NullableString,
        "message": NullableString,
    },
)
entry_model = ns.model(
    "GttEntry",
    {
        "trigger_id": fields.String, "trigger_type": fields.String(enum=["single", "two-leg", "bracket"]),
        "status": fields.String(enum=["active", "triggered", "cancelled", "expired", "rejected"]),
        "symbol": fields.String, "exchange": fields.String,
        "trigger_prices": fields.List(fields.Float), "last_price": fields.Float,
        "legs": fields.List(fields.Nested(leg_model)),
        "created_at": fields.String, "updated_at": fields.String, "expires_at": fields.String,
    },
)
book_model = ns.model(
    "GttOrderBook",
    {"status": fields.String(example="success"), "mode": MODE_FIELD, "data": fields.List(fields.Nested(entry_model)),
     "request_id": fields.String},
)
event_model = ns.model(
    "GttEvent",
    {
        "event": fields.String(example="triggered", description="the notification event (see NOTIFY_EVENTS)"),
        "at": fields.String(description="IST, YYYY-MM-DD HH:MM:SS"),
        "message": fields.String(example="GTT triggered: BUY 10 IDEA (NSE) above 9.61 — GTT-C26112200000001, "
                                         "order 251202000123"),
        "deliveries": fields.List(fields.String(enum=["pending", "delivered", "failed", "dropped"]),
                                  description="one per notification URL it was sent to"),
    },
)
status_entry_model = ns.inherit("GttStatusEntry", entry_model, {
    "events": fields.List(fields.Nested(event_model), description="what the gateway noticed, oldest first"),
    "pair_trigger_id": fields.String(description="asked by an OCO leg's broker id: the OCO it belongs to"),
    "role": fields.String(enum=["stoploss", "target", "two-leg"], description="asked by a leg's id: its role"),
    "pair_status": fields.String(description="asked by a leg's id: its OCO's status"),
})
status_model = ns.model(
    "GttOrderStatus",
    {"status": fields.String(example="success"), "mode": MODE_FIELD, "data": fields.Nested(status_entry_model),
     "request_id": fields.String},
)


def _gateway():
    return current_app.extensions["openalgo_gtt"]


# OpenAlgo's analyzer marks what did not reach a real broker with "mode": "analyze"; every
# success answer on the sandbox broker carries it, so a caller can never mistake one for a trade.
ANALYZE = "analyze"


def _on_sandbox() -> bool:
    return _gateway().settings.broker == "sandbox"


def _marked(answer):
    """A success answer (a body, or a (body, status) pair) with the sandbox marker when the
    gateway trades on the sandbox; errors and Upstox answers are returned as they are."""
    body, status = answer if isinstance(answer, tuple) else (answer, 200)
    if status != 200 or not isinstance(body, dict) or body.get("status") != "success" or not _on_sandbox():
        return answer
    body = {**body, "mode": ANALYZE}  # a copy: a replayed answer may be shared
    return (body, status) if isinstance(answer, tuple) else body


def _with_contract(answer, body: GttBody):
    """A success answer naming the contract a continuous future ticker (NIFTY1!) was placed on."""
    body_out, status = answer if isinstance(answer, tuple) else (answer, 200)
    if status != 200 or not isinstance(body_out, dict) or body_out.get("status") != "success":
        return answer
    contract = _gateway().gtts.planner.contract(body.symbol, body.exchange)
    if contract is None:
        return answer
    body_out = {**body_out, "contract": contract}
    return (body_out, status) if isinstance(answer, tuple) else body_out


def _order(body: PlaceGttBody | ModifyGttBody) -> Order:
    return Order(symbol=body.symbol, exchange=body.exchange, intent=body.intent(),
                 strategy=body.strategy, force=body.force, expires_at=body.expires_at,
                 queue=getattr(body, "queue", True) and not _respond_sync())


def _respond_sync() -> bool:
    """RFC 7240's `Prefer: respond-sync`: the caller wants the outcome now, never a 202."""
    return any(token.strip().lower() == "respond-sync"
               for value in request.headers.getlist("Prefer") for token in value.split(","))


def _errors(resource):
    for status, reason in ((400, "Invalid request"), (403, "Invalid openalgo apikey"), (404, "Unknown symbol or trigger"),
                           (429, "Daily trade limit or broker rate limit"), (502, "The broker (Upstox or Kite) failed or refused the token"),
                           (504, "The broker did not answer in time")):
        resource = ns.response(status, reason, error_model)(resource)
    return resource


@ns.route("/ping")
class Ping(Resource):
    @ns.expect(apikey_model, validate=False)
    @ns.response(200, "The key is valid", ping_model)
    @ns.response(403, "Invalid openalgo apikey", error_model)
    def post(self):
        """Check an API key and see which broker the gateway drives."""
        caller_from_body()
        broker = _gateway().settings.broker
        return _marked({"status": "success", "data": {"broker": broker, "message": "pong"}})


@ns.route("/placegtt", "/placegttorder")
class PlaceGtt(Resource):
    @ns.expect(place_body, validate=False)
    @ns.response(200, "Placed", placed_model)
    @_errors
    def post(self):
        """Place a GTT: SINGLE (one trigger), OCO (two-leg exit) or BRACKET (entry + target + stop-loss)."""
        _, raw = caller_from_body()
        body = validate(PlaceGttBody, raw)
        return _marked(_with_contract(_gateway().place(context(), _order(body), raw, idempotency_key(raw)), body))


@ns.route("/modifygtt", "/modifygttorder")
class ModifyGtt(Resource):
    @ns.expect(modify_body, validate=False)
    @ns.response(200, "Modified", placed_model)
    @_errors
    def post(self):
        """Replace a GTT's quantity and trigger prices (full replacement, as the SDK sends it)."""
        _, raw = caller_from_body()
        body = validate(ModifyGttBody, raw)
        return _marked(_with_contract(_gateway().gtts.modify_once(context(), body.trigger_id, _order(body), raw,
                                                                  idempotency_key(raw)), body))


@ns.route("/cancelgtt", "/cancelgttorder")
class CancelGtt(Resource):
    @ns.expect(trigger_body, validate=False)
    @ns.response(200, "Cancelled", placed_model)
    @_errors
    def post(self):
        """Cancel a GTT."""
        _, raw = caller_from_body()
        body = validate(TriggerBody, raw)
        return _marked(_gateway().gtts.cancel_once(context(), body.trigger_id, raw, idempotency_key(raw)))


@ns.route("/gttorderbook")
class GttOrderBook(Resource):
    @ns.expect(book_body, validate=False)
    @ns.response(200, "The order book", book_model)
    @_errors
    def post(self):
        """Triggers that can still fire; `"status": "all"` for every state."""
        _, raw = caller_from_body()
        body = validate(OrderBookBody, raw)
        book = _gateway().gtts.book_view(include_all=body.status == "all")
        # The audit keeps which triggers were shown, not the whole book on every poll.
        ctx = context()
        ctx.audit_response = {"status": "success", "entries": len(book.trigger_ids),
                              "trigger_ids": list(book.trigger_ids)}
        mode = f'"mode":"{ANALYZE}",' if _on_sandbox() else ""
        # Callers polling together share one encoding of the entries: only the envelope is
        # written here, byte for byte what json_response writes for {"status", ("mode",) "data"}.
        return current_app.response_class(
            f'{{"status":"success",{mode}"data":{book.data_json},"request_id":{dumps(ctx.request_id)}}}',
            mimetype="application/json")


@ns.route("/gttorderstatus")
class GttOrderStatus(Resource):
    @ns.expect(trigger_body, validate=False)
    @ns.response(200, "One trigger in any state", status_model)
    @_errors
    def post(self):
        """One trigger in any state, with each leg's broker status, order id and rejection reason."""
        _, raw = caller_from_body()
        body = validate(StatusBody, raw)
        gtts = _gateway().gtts
        trigger_id = body.trigger_id
        if body.request_id is not None:
            where = _gateway().place.queue.where_is(body.request_id)
            if where is None:
                raise ApiError(404, f"No place with request_id {body.request_id}")
            if isinstance(where, dict):
                return _marked({"status": "success", "data": where})
            trigger_id = where
        asked_at = _gateway().clock.now()  # a fill looked up from here on is this request's own
        entry = gtts.status(trigger_id)
        if _gateway().fills is not None:  # each fired leg's order: status, filled quantity, average price
            entry = _gateway().fills.annotate(entry, fresh_since=asked_at)
        # A leg's events are its pair's: the pair is what the gateway tells the trader about.
        events = gtts.events(entry.get("pair_trigger_id") or entry["trigger_id"])
        return _marked({"status": "success", "data": {**entry, "events": events}})
