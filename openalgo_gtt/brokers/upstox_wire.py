"""Upstox's JSON, both ways: request bodies and query strings out; answers in.

`interpret` maps one HTTP answer to its payload or to the matching `errors` type (the error
envelope is read here, once, for every Upstox client); the parsers turn a success payload into the
domain's values. Nothing here does I/O: the transport is in upstox.py.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
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
from openalgo_gtt.domain.model import BrokerGtt, GttRule, OrderFill, Quote, RuleState

TOKEN_ERROR_CODE = "UDAPI100050"
QUOTE_BATCH = 500  # Upstox's documented maximum of instrument keys per quote call
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ----- answers -------------------------------------------------------------------------------


def interpret(status: int, raw: bytes, is_write: bool, *, bearer: bool = True) -> dict:
    """Map one HTTP answer to its success payload or to the matching BrokerError.

    `bearer` is False for the login calls, which carry no access token: their 401 means the app's
    credentials are wrong (InputRejected, not TokenRejected), and the token exchange answers a
    flat object instead of the success envelope.
    """
    payload = decode(raw)
    code, message = error_of(payload)
    text = message or f"HTTP {status}: {_snippet(raw) or '(empty body)'}"
    if bearer and (status == 401 or code == TOKEN_ERROR_CODE):
        raise TokenRejected(text, code=code, http_status=status, may_have_reached=False)
    if 200 <= status < 300:
        if isinstance(payload, dict) and payload.get("status") == "success":
            return payload
        if isinstance(payload, dict) and payload.get("status") == "error" and (code or message):
            # An explicit error envelope: Upstox says it refused, even if the status was 2xx.
            raise InputRejected(text, code=code, http_status=status, may_have_reached=False)
        if not bearer and isinstance(payload, dict):
            return payload
        raise UnreadableAnswer(f"HTTP {status} without a success payload: {_snippet(raw)!r}",
                               http_status=status, may_have_reached=is_write)
    if status == 429:
        raise RateLimited(text, code=code, http_status=status, may_have_reached=False)
    if 400 <= status < 500:
        raise InputRejected(text, code=code, http_status=status, may_have_reached=False)
    if status >= 500:
        raise BrokerFailure(text, code=code, http_status=status, may_have_reached=is_write)
    raise UnreadableAnswer(f"unexpected HTTP {status}", http_status=status, may_have_reached=is_write)


def error_of(payload: Any) -> tuple[str | None, str | None]:
    """The first error's code and message; Upstox sends `error_code` and the deprecated
    `errorCode`, so either is read."""
    if not isinstance(payload, dict) or not isinstance(payload.get("errors"), list):
        return None, None
    first = payload["errors"][0] if payload["errors"] else None
    if not isinstance(first, dict):
        return None, None
    code = first.get("error_code") or first.get("errorCode")
    message = first.get("message")
    return (str(code) if code else None), (str(message) if message else None)


# ----- request shaping -----------------------------------------------------------------------


def rule_json(rule: GttRule) -> dict:
    out: dict[str, Any] = {
        "strategy": rule.strategy,
        "trigger_type": rule.trigger_type,
        "trigger_price": _number(rule.trigger_price),
    }
    if rule.trailing_gap is not None:
        out["trailing_gap"] = _number(rule.trailing_gap)
    if rule.market_protection is not None:
        out["market_protection"] = rule.market_protection
    return out


def batches(keys: Iterable[str]) -> Iterator[list[str]]:
    return wire_batches(keys, QUOTE_BATCH)


def keys_query(keys: Sequence[str]) -> str:
    # Commas stay literal as separators; everything else is encoded ("|" -> %7C, " " -> %20).
    return "instrument_key=" + ",".join(quote(key, safe="") for key in keys)


# ----- answer parsing ------------------------------------------------------------------------


# The parsers below raise KeyError/ValueError/TypeError on any deviation from the documented
# shape; the transport (upstox.py) turns that into UnreadableAnswer (may_have_reached=True for a write: Upstox
# said success, so the work was very likely done even though its id is missing).


def first_gtt_id(payload: dict) -> str:
    return _text(payload["data"]["gtt_order_ids"][0])


def parse_ohlc(payload: dict, asked: Sequence[str]) -> dict[str, Quote]:
    quotes = {}
    for key, item in _quote_items(payload, asked):
        live = item.get("live_ohlc")
        day_open = _price_or_none(live.get("open")) if isinstance(live, dict) else None
        # Before the market opens Upstox reports open as 0 or leaves it out.
        quotes[key] = Quote(key, _price(item["last_price"]), day_open or None)
    return quotes


def parse_order_fill(payload: dict) -> OrderFill:
    """GET /v2/order/details: `data = {status, filled_quantity, average_price, status_message, ...}`."""
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("order details without a data object")
    message = data.get("status_message") or data.get("status_message_raw")
    return OrderFill(status=str(data.get("status") or "").upper(), filled_quantity=int(data.get("filled_quantity") or 0),
                     average_price=_price_or_none(data.get("average_price")) or None,
                     message=str(message) if message else None)


def parse_ltp(payload: dict, asked: Sequence[str]) -> dict[str, Quote]:
    """The v3 LTP answer: `data[SEGMENT:SYMBOL] = {last_price, instrument_token, ...}`."""
    return {key: Quote(key, _price(item["last_price"]), None) for key, item in _quote_items(payload, asked)}


def _quote_items(payload: dict, asked: Sequence[str]) -> Iterator[tuple[str, dict]]:
    """(instrument key, quote) pairs. The keys of `data` are SEGMENT:SYMBOL, not the keys we
    sent, so each value is mapped back through its `instrument_token`."""
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("quote answer without a data object")
    wanted = set(asked)
    for item in data.values():
        if not isinstance(item, dict):
            continue
        key = item.get("instrument_token")
        if isinstance(key, str) and key in wanted and _price_or_none(item.get("last_price")) is not None:
            yield key, item


def parse_gtts(payload: dict) -> list[BrokerGtt]:
    data = payload["data"]
    if not isinstance(data, list):
        raise ValueError("GTT details without a data list")
    return [_parse_gtt(item) for item in data]


def _parse_gtt(item: dict) -> BrokerGtt:
    instrument_key = str(item["instrument_token"])
    rules = item["rules"]
    if not isinstance(rules, list) or not rules:
        raise ValueError("rules is not a non-empty list")
    return BrokerGtt(
        gtt_id=_text(item["gtt_order_id"]),
        type=_text(item["type"]),
        instrument_key=instrument_key,
        segment=str(item.get("exchange") or instrument_key.partition("|")[0]),
        trading_symbol=str(item.get("trading_symbol") or ""),
        quantity=_integer(item["quantity"]),
        product=_text(item["product"]),
        rules=tuple(_parse_rule(rule) for rule in rules),
        created_at=_from_micros(item.get("created_at")),
        expires_at=_from_micros(item.get("expires_at")),
        updated_at=_from_micros(item.get("updated_at")),
    )


def _parse_rule(rule: dict) -> RuleState:
    return RuleState(
        strategy=_text(rule["strategy"]),
        trigger_type=_text(rule["trigger_type"]),
        trigger_price=_price(rule["trigger_price"]),
        transaction_type=_text(rule["transaction_type"]),
        status=_text(rule["status"]),
        message=_optional_text(rule.get("message")),
        order_id=_optional_text(rule.get("order_id")),
        trailing_gap=_price_or_none(rule.get("trailing_gap")),
    )


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _from_micros(value: Any) -> datetime | None:
    """Upstox GTT timestamps are epoch microseconds; None when absent."""
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=_integer(value))
