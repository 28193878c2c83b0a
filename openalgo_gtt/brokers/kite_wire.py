"""Kite Connect v3's wire shapes, both ways: form bodies and query strings out; answers in.

`interpret` maps one HTTP answer to its payload or to the matching `errors` type (Kite's error
envelope, `{"status": "error", "message", "error_type"}`, is read here, once, for every Kite
call); the parsers turn a success payload into the domain's values. Nothing here does I/O: the
transport is brokers/http.py, the client kite.py. Facts: the reference notes on Kite Connect and
its GTT page (kite-connect-gtt.txt).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from openalgo_gtt.brokers.errors import (
    BrokerFailure,
    InputRejected,
    RateLimited,
    TokenRejected,
    UnreadableAnswer,
)
from openalgo_gtt.brokers.wire_values import batches as wire_batches
from openalgo_gtt.brokers.wire_values import decode
from openalgo_gtt.brokers.wire_values import integer as _integer
from openalgo_gtt.brokers.wire_values import json_number as _number
from openalgo_gtt.brokers.wire_values import price as _price
from openalgo_gtt.brokers.wire_values import price_or_none as _price_or_none
from openalgo_gtt.brokers.wire_values import snippet as _snippet
from openalgo_gtt.brokers.wire_values import text as _text
from openalgo_gtt.domain.clock import IST, as_utc
from openalgo_gtt.domain.kite_symbols import segment_of_exchange
from openalgo_gtt.domain.model import (
    ABOVE,
    OrderFill,
    BELOW,
    CANCELLED,
    ENTRY,
    EXPIRED,
    FAILED,
    INACTIVE,
    NATIVE_OCO,
    SCHEDULED,
    SINGLE,
    STOPLOSS,
    TARGET,
    TRIGGERED,
    BrokerGtt,
    GttRequest,
    Quote,
    RuleState,
)

TOKEN_EXCEPTION = "TokenException"
TOKEN_REJECTED = "Kite rejected the access token: log in again"
QUOTE_BATCH = 500  # instruments per quote call (Kite's documented maximum for ohlc/ltp)
KITE_SINGLE, KITE_TWO_LEG = "single", "two-leg"
# Kite stamps GTTs to the second. A GTT created at 10:00:00.9 says "10:00:00": it is read as the
# last instant that second can mean, so "created since the attempt began" never misses it.
_SECOND_END = timedelta(microseconds=999_999)

# Kite's error types that mean "retry shortly, nothing was done" (429, or the OMS unreachable).
_RATE_TYPES = frozenset({"NetworkException"})
# Error types that are a refusal of this request: the trader or the request must change.
_REFUSAL_TYPES = frozenset({"InputException", "OrderException", "MarginException", "HoldingException",
                            "UserException", "PermissionException"})


# ----- answers -------------------------------------------------------------------------------


def interpret(status: int, raw: bytes, is_write: bool, *, bearer: bool = True) -> Any:
    """Map one HTTP answer to its success payload or to the matching BrokerError.

    | Kite                               | here                                          |
    | 403 / TokenException               | TokenRejected (log in again)                  |
    | InputException and other refusals  | InputRejected, with Kite's message            |
    | 429 / NetworkException             | RateLimited (nothing was done; retry shortly) |
    | GeneralException, DataException, 5xx | BrokerFailure (may have reached, for a write) |
    | HTML, empty, bad JSON              | UnreadableAnswer                              |

    `bearer` is False for the session exchange, which carries no access token: its 403 means the
    request token or checksum is wrong (InputRejected), not that a login is needed.
    """
    payload = decode(raw)
    error_type, message = error_of(payload)
    text = message or f"HTTP {status}: {_snippet(raw) or '(empty body)'}"
    if bearer and (status == 403 or error_type == TOKEN_EXCEPTION):
        detail = f" ({message})" if message else ""
        raise TokenRejected(TOKEN_REJECTED + detail, code=TOKEN_EXCEPTION, http_status=status, may_have_reached=False)
    if 200 <= status < 300 and isinstance(payload, dict) and payload.get("status") == "success":
        return payload
    if status == 429 or error_type in _RATE_TYPES:
        raise RateLimited(text, code=error_type, http_status=status, may_have_reached=False)
    if error_type in _REFUSAL_TYPES or (error_type == TOKEN_EXCEPTION and not bearer) or 400 <= status < 500:
        raise InputRejected(text, code=error_type, http_status=status, may_have_reached=False)
    if error_type is not None or status >= 500:
        raise BrokerFailure(text, code=error_type, http_status=status, may_have_reached=is_write)
    raise UnreadableAnswer(f"HTTP {status} without a success payload: {_snippet(raw)!r}",
                           http_status=status, may_have_reached=is_write)


def error_of(payload: Any) -> tuple[str | None, str | None]:
    """Kite's `error_type` and `message` from an error envelope; (None, None) otherwise."""
    if not isinstance(payload, dict) or payload.get("status") != "error":
        return None, None
    error_type, message = payload.get("error_type"), payload.get("message")
    return (str(error_type) if error_type else "GeneralException"), (str(message) if message else None)


# ----- request shaping -----------------------------------------------------------------------


def split_key(instrument_key: str) -> tuple[str, str]:
    """"NFO:NIFTY26DEC24500CE" -> ("NFO", "NIFTY26DEC24500CE"): the gateway keys Kite's
    instruments by EXCHANGE:TRADINGSYMBOL, which is what GTTs and quotes name them by."""
    exchange, sep, symbol = instrument_key.partition(":")
    if not sep or not exchange or not symbol:
        # Another broker's master is loaded (Upstox's keys look like NSE_EQ|INE...).
        raise InputRejected(f"not a Kite instrument (EXCHANGE:TRADINGSYMBOL): {instrument_key!r}; load Kite's "
                            "instruments with: python run.py instruments load", may_have_reached=False)
    return exchange, symbol


def gtt_form(request: GttRequest, last_price: Decimal) -> dict[str, str]:
    """The place/modify form: `type`, and `condition` and `orders` as JSON strings.

    A Kite `single` has no direction: it fires when the price reaches its trigger from where it
    is. So a rising trigger (ABOVE) must be above the last price and a falling one below it, or
    Kite would fire it the other way; a `two-leg` needs [lower, upper] around the last price.
    Such a request is refused here, before anything is sent.
    """
    exchange, symbol = split_key(request.instrument_key)
    if request.type == SINGLE and len(request.rules) == 1:
        rule = request.rules[0]
        wrong = (rule.trigger_type == ABOVE and rule.trigger_price <= last_price) or (
            rule.trigger_type == BELOW and rule.trigger_price >= last_price)
        if wrong:
            side, trigger_name = (("above", "triggerprice_tg") if rule.trigger_type == ABOVE
                                  else ("below", "triggerprice_sl"))
            raise InputRejected(
                f"{trigger_name} {rule.trigger_price} must be {side} the last price {last_price}: a Kite GTT fires "
                "when the price reaches its trigger from where it is now", may_have_reached=False)
        kind, rules = KITE_SINGLE, [rule]
    elif request.type == NATIVE_OCO and len(request.rules) == 2:
        rules = sorted(request.rules, key=lambda r: r.trigger_price)
        low, high = rules[0].trigger_price, rules[1].trigger_price
        if not low < last_price < high:
            raise InputRejected(
                f"an OCO's triggers must lie either side of the last price {last_price}: got {low} and {high}",
                may_have_reached=False)
        kind = KITE_TWO_LEG
    else:
        raise InputRejected(f"Kite has no GTT of type {request.type} with {len(request.rules)} rules",
                            may_have_reached=False)
    condition = {"exchange": exchange, "tradingsymbol": symbol,
                 "trigger_values": [_number(rule.trigger_price) for rule in rules],
                 "last_price": _number(last_price)}
    orders = [{"exchange": exchange, "tradingsymbol": symbol, "transaction_type": request.transaction_type,
               "quantity": request.quantity, "order_type": "LIMIT", "product": request.product,
               "price": _number(rule.trigger_price if rule.price is None else rule.price)} for rule in rules]
    return {"type": kind, "condition": json.dumps(condition), "orders": json.dumps(orders)}


def batches(keys: Iterable[str]) -> Iterator[list[str]]:
    return wire_batches(keys, QUOTE_BATCH)


def instruments_query(keys: Sequence[str]) -> str:
    """`i=NSE:INFY&i=NFO:...`, each key encoded (":" stays readable)."""
    return "&".join("i=" + quote(key, safe=":") for key in keys)


# ----- answer parsing ------------------------------------------------------------------------
# The parsers raise KeyError/ValueError/TypeError on any deviation from the documented shape;
# the transport turns that into UnreadableAnswer.


def trigger_id(payload: dict) -> str:
    value = payload["data"]["trigger_id"]
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) == "":
        raise ValueError(f"no trigger_id in {payload['data']!r}")
    return str(value)


def parse_quotes(payload: dict, asked: Sequence[str]) -> dict[str, Quote]:
    """`/quote/ohlc` (or `/quote/ltp`): data keyed by the EXCHANGE:TRADINGSYMBOL asked for."""
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("quote answer without a data object")
    quotes = {}
    for key in asked:
        item = data.get(key)
        if not isinstance(item, dict):
            continue  # Kite leaves out instruments it does not know
        last = _price_or_none(item.get("last_price"))
        if last is None:
            continue
        ohlc = item.get("ohlc")
        day_open = _price_or_none(ohlc.get("open")) if isinstance(ohlc, dict) else None
        quotes[key] = Quote(key, last, day_open or None)  # 0 before the open means unknown
    return quotes


def parse_gtts(payload: dict) -> list[BrokerGtt]:
    data = payload["data"]
    if not isinstance(data, list):
        raise ValueError("GTT list without a data list")
    return [parse_gtt(item) for item in data]


def parse_one_gtt(payload: dict) -> BrokerGtt:
    data = payload["data"]
    if not isinstance(data, dict):
        raise ValueError("GTT answer without a data object")
    return parse_gtt(data)


_STATE = {  # Kite's GTT status -> each still-waiting order's rule status, and what it means
    "active": (SCHEDULED, None),
    "triggered": (CANCELLED, None),  # the other leg of a two-leg that fired lies dormant for good
    "disabled": (INACTIVE, "Kite disabled this GTT: it needs action from the trader in Kite "
                           "(for example a trigger too close to the price, or a corporate action)"),
    "expired": (EXPIRED, "expired at Kite"),
    "cancelled": (CANCELLED, "cancelled by Zerodha's system"),
    "rejected": (FAILED, "rejected by Kite"),
    "deleted": (CANCELLED, "deleted at Kite"),
}


def parse_gtt(item: dict) -> BrokerGtt:
    condition, orders = item["condition"], item["orders"]
    exchange, symbol = _text(condition["exchange"]), _text(condition["tradingsymbol"])
    kind = _text(item["type"])
    triggers = [_price(value) for value in condition["trigger_values"]]
    if not isinstance(orders, list) or not orders or len(orders) != len(triggers):
        raise ValueError("a GTT needs one order per trigger value")
    status = _text(item["status"]).lower()
    waiting, why = _STATE.get(status, (status.upper(), None))
    last_price = _price_or_none(condition.get("last_price"))
    if kind == KITE_SINGLE:
        direction = ABOVE if last_price is None or triggers[0] > last_price else BELOW
        roles = [(ENTRY, direction)]
        gtt_type = SINGLE
        if status == "triggered":
            waiting = TRIGGERED  # its one order fired, even if Kite has not filled in the result yet
    elif kind == KITE_TWO_LEG and len(triggers) == 2:
        roles = [(STOPLOSS, BELOW), (TARGET, ABOVE)]
        gtt_type = NATIVE_OCO
    else:
        raise ValueError(f"unknown GTT type {kind!r}")
    rules = []
    for (strategy, direction), trigger, order in zip(roles, triggers, orders):
        rule_status, message, order_id = _order_outcome(order.get("result"), waiting, why, status)
        rules.append(RuleState(strategy=strategy, trigger_type=direction, trigger_price=trigger,
                               transaction_type=_text(order["transaction_type"]), status=rule_status,
                               message=message, order_id=order_id, price=_price(order["price"])))
    first = orders[0]
    return BrokerGtt(
        gtt_id=str(_integer_or_text(item["id"])),
        type=gtt_type,
        instrument_key=f"{exchange}:{symbol}",
        segment=segment_of_exchange(exchange),
        trading_symbol=symbol,
        quantity=_integer(first["quantity"]),
        product=_text(first["product"]),
        rules=tuple(rules),
        created_at=_ist_time(item.get("created_at"), end_of_second=True),
        expires_at=_ist_time(item.get("expires_at")),
        updated_at=_ist_time(item.get("updated_at")),
    )


def _order_outcome(result: Any, waiting: str, why: str | None, status: str) -> tuple[str, str | None, str | None]:
    """(rule status, message, order id) of one order: its `order_result` once the trigger fired."""
    if not isinstance(result, dict):
        if status == "triggered" and waiting == CANCELLED:
            return CANCELLED, "the other leg fired", None
        return waiting, why, None
    outcome = result.get("order_result") if isinstance(result.get("order_result"), dict) else {}
    order_id = outcome.get("order_id") or None
    reason = outcome.get("rejection_reason") or None
    if str(outcome.get("status") or "").lower() in ("failed", "rejected"):
        return FAILED, str(reason or "the order Kite placed was rejected"), (str(order_id) if order_id else None)
    return TRIGGERED, (str(reason) if reason else None), (str(order_id) if order_id else None)


def single_order_fill(payload: dict) -> tuple[str, str | None]:
    """`/orders/<id>`: the latest entry's (status, status_message): COMPLETE, REJECTED,
    CANCELLED, OPEN, ..."""
    history = payload["data"]
    if not isinstance(history, list) or not history:
        raise ValueError("order history without entries")
    latest = history[-1]
    message = latest.get("status_message")
    return _text(latest["status"]).upper(), (str(message) if message else None)


def order_fill(payload: dict) -> OrderFill:
    """`/orders/<id>`: the latest entry's status, filled quantity, average price and message."""
    history = payload["data"]
    if not isinstance(history, list) or not history:
        raise ValueError("order history without entries")
    latest = history[-1]
    message = latest.get("status_message")
    average = latest.get("average_price")
    return OrderFill(status=_text(latest["status"]).upper(), filled_quantity=int(latest.get("filled_quantity") or 0),
                     average_price=Decimal(str(average)) if average not in (None, "", 0) else None,
                     message=str(message) if message else None)


def _ist_time(value: Any, *, end_of_second: bool = False) -> datetime | None:
    """Kite's "YYYY-MM-DD HH:MM:SS", which is IST, as an aware UTC time; None when absent."""
    if value in (None, ""):
        return None
    moment = datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    return as_utc(moment + _SECOND_END if end_of_second else moment)


def _integer_or_text(value: Any) -> int | str:
    return value if isinstance(value, str) and value else _integer(value)
