"""POST /api/v1/orderbook, /tradebook, /positionbook, /funds: the sandbox's paper account in
OpenAlgo's shapes (services/paper.py); /cancelorder cancels an open paper order. On Upstox and
Kite they answer 501 "sandbox only"."""
from __future__ import annotations

from flask import current_app
from flask_restx import Namespace, Resource, fields
from pydantic import Field

from openalgo_gtt.api.auth import caller_from_body
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.api.openapi import NullableFloat, swagger2_schema
from openalgo_gtt.api.schemas import Body, Text, validate
from openalgo_gtt.services.paper import SandboxOnly

ns = Namespace("paper", path="/v1", description="The sandbox's paper account: orders, trades, positions, funds")


class CancelOrderBody(Body):
    """OpenAlgo's cancelorder, as the SDK's `cancelorder(order_id=...)` sends it."""

    strategy: str | None = Field(None, max_length=64)
    orderid: Text = Field(description="The paper order's id, as the orderbook shows it")


body_model = ns.schema_model("PaperAccountRequest", swagger2_schema(Body))
cancel_body = ns.schema_model("CancelOrderRequest", swagger2_schema(CancelOrderBody))
order_model = ns.model("PaperOrder", {
    "action": fields.String, "symbol": fields.String, "exchange": fields.String, "orderid": fields.String,
    "product": fields.String, "quantity": fields.Integer, "price": fields.Float,
    "pricetype": fields.String(enum=["LIMIT", "MARKET"]),
    "order_status": fields.String(enum=["open", "complete", "cancelled"]), "trigger_price": fields.Float,
    "average_price": fields.Float, "timestamp": fields.String(example="07-Dec-2026 14:05:09"),
    "gtt_id": fields.String(description="the sandbox GTT whose rule fired"),
    "strategy": fields.String(enum=["entry", "target", "stoploss"]),
})
trade_model = ns.model("PaperTrade", {
    "action": fields.String, "symbol": fields.String, "exchange": fields.String, "orderid": fields.String,
    "product": fields.String, "quantity": fields.Integer, "average_price": fields.Float,
    "trade_value": fields.Float, "timestamp": fields.String(example="07-Dec-2026 14:05:09"),
})
position_model = ns.model("PaperPosition", {
    "symbol": fields.String, "exchange": fields.String, "product": fields.String, "quantity": fields.Integer,
    "average_price": fields.String(example="102.50"),
    "ltp": NullableFloat(description="the last price; null until the sandbox has one"), "pnl": fields.Float,
    "realised_pnl": fields.Float, "unrealised_pnl": fields.Float,
})
funds_model = ns.model("PaperFunds", {
    name: fields.String(example="1000000.00")
    for name in ("availablecash", "collateral", "m2mrealized", "m2munrealized", "utiliseddebits")
})
statistics_model = ns.model("PaperOrderStatistics", {
    name: fields.Integer for name in ("total_buy_orders", "total_sell_orders", "total_completed_orders",
                                      "total_open_orders", "total_rejected_orders")
})


def _envelope(name: str, data) -> object:
    return ns.model(name, {"status": fields.String(example="success"), "mode": fields.String(example="analyze"),
                           "data": data, "request_id": fields.String})


orderbook_answer = _envelope("PaperOrderBook", fields.Nested(ns.model("PaperOrders", {
    "orders": fields.List(fields.Nested(order_model)), "statistics": fields.Nested(statistics_model)})))
tradebook_answer = _envelope("PaperTradeBook", fields.List(fields.Nested(trade_model)))
positionbook_answer = _envelope("PaperPositionBook", fields.List(fields.Nested(position_model)))
funds_answer = _envelope("PaperFundsAnswer", fields.Nested(funds_model))
cancel_answer = ns.model("PaperOrderCancelled", {
    "status": fields.String(example="success"), "mode": fields.String(example="analyze"),
    "orderid": fields.String(example="261207000000001"), "request_id": fields.String})


def _answer(data, entries: int | None = None) -> dict:
    ctx = context()
    if entries is not None:  # the audit keeps how much was shown, not every row on every poll
        ctx.audit_response = {"status": "success", "entries": entries}
    return {"status": "success", "mode": "analyze", "data": data}


def _book(schema: type[Body] = Body):
    _, raw = caller_from_body()
    body = validate(schema, raw)
    gateway = current_app.extensions["openalgo_gtt"]
    if gateway.paper is None or not gateway.paper.enabled:
        raise SandboxOnly(gateway.settings.broker)
    return gateway.paper, body


def _errors(resource):
    for status, reason in ((400, "Invalid request"), (403, "Invalid openalgo apikey"),
                           (501, "Not on the sandbox: this gateway handles GTTs only on Upstox and Kite")):
        resource = ns.response(status, reason)(resource)
    return resource


@ns.route("/orderbook")
class OrderBook(Resource):
    @ns.expect(body_model, validate=False)
    @ns.response(200, "Every paper order, newest first, with counts", orderbook_answer)
    @_errors
    def post(self):
        """The sandbox's paper orders (a fired GTT rule's child order), newest first."""
        book = _book()[0].orderbook()
        return _answer(book, len(book["orders"]))


@ns.route("/tradebook")
class TradeBook(Resource):
    @ns.expect(body_model, validate=False)
    @ns.response(200, "Every paper trade, newest first", tradebook_answer)
    @_errors
    def post(self):
        """The sandbox's paper trades (filled orders), newest first."""
        trades = _book()[0].tradebook()
        return _answer(trades, len(trades))


@ns.route("/positionbook")
class PositionBook(Resource):
    @ns.expect(body_model, validate=False)
    @ns.response(200, "Every position, closed ones with quantity 0", positionbook_answer)
    @_errors
    def post(self):
        """The sandbox's positions: net quantity, average price, P&L marked to the last price."""
        positions = _book()[0].positionbook()
        return _answer(positions, len(positions))


@ns.route("/funds")
class Funds(Resource):
    @ns.expect(body_model, validate=False)
    @ns.response(200, "The paper account's funds", funds_answer)
    @_errors
    def post(self):
        """The paper account: SANDBOX_CAPITAL plus realised P&L, less the margin in use."""
        return _answer(_book()[0].funds())


@ns.route("/cancelorder")
class CancelOrder(Resource):
    @ns.expect(cancel_body, validate=False)
    @ns.response(200, "Cancelled: its margin is free", cancel_answer)
    @ns.response(404, "No paper order with this id")
    @_errors
    def post(self):
        """Cancel an open paper order (400 naming its state when it is complete or cancelled)."""
        book, body = _book(CancelOrderBody)
        return {"status": "success", "mode": "analyze", "orderid": book.cancel_order(body.orderid)}
