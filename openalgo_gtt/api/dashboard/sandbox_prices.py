"""A price pushed by hand into the sandbox broker (POST /ui/sandbox/ticks), through `push_ticks`
as /api/v1 sandbox ticks are."""
from __future__ import annotations

from flask import make_response, render_template, request

from openalgo_gtt.api.dashboard.blueprint import BOOK_CHANGED, bp, current_gateway
from openalgo_gtt.api.dashboard.book import tick_of
from openalgo_gtt.api.dashboard.rows import money
from openalgo_gtt.api.errors import ApiError
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.api.schemas import strict_decimal
from openalgo_gtt.services.sandbox_feed import NotSandbox, PriceTick, push_ticks


@bp.post("/ui/sandbox/ticks")
def sandbox_tick():
    symbol = str(request.form.get("symbol") or "").strip()
    exchange = str(request.form.get("exchange") or "NSE").strip()
    try:
        price = strict_decimal(str(request.form.get("price") or "").strip())
        if price <= 0:
            raise ValueError
    except Exception:  # noqa: BLE001 - any unreadable price
        raise ApiError(400, "price: must be a positive number such as 9.56") from None
    if not symbol:
        raise ApiError(400, "symbol: a symbol is required")
    try:
        fired = push_ticks(current_gateway(), [PriceTick(symbol, exchange, price)])
    except NotSandbox as exc:
        raise ApiError(409, str(exc)) from None
    answer = {"status": "success", "mode": "analyze", "applied": 1,
              "fired": [{"gtt_id": e.gtt_id, "price": e.price, "transaction_type": e.transaction_type, "ltp": e.ltp}
                        for e in fired]}
    context().audit_response = answer
    tick = tick_of(symbol, exchange)
    said = f"Pushed {symbol.upper()} at {money(price, tick)}"
    said += (": fired " + ", ".join(f"{e.gtt_id} ({e.transaction_type} at {money(e.price, tick)})" for e in fired)
             if fired else ": nothing fired")
    response = make_response(render_template("_message.html", kind="success", message=said))
    response.headers["HX-Trigger"] = BOOK_CHANGED
    return response
