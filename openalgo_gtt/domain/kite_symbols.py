"""Kite's instruments CSV rows -> the gateway's instruments. Pure functions, no I/O.

Kite's columns: instrument_token, exchange_token, tradingsymbol, name, last_price, expiry,
strike, tick_size, lot_size, instrument_type, segment, exchange (the reference notes).

The gateway keys a Kite instrument by `EXCHANGE:TRADINGSYMBOL` (what GTTs, quotes and the seed
routes name it by) and files it under the same segments as Upstox's master (NSE_EQ, NSE_FO,
NSE_INDEX, ...), so everything above the loader and the adapter is the same for both brokers.

OpenAlgo's symbol is built from the row's structured fields, never from Kite's trading symbol:
NAME + expiry as DDMMMYY + (FUT | strike + CE/PE). Kite's own symbol (NIFTY26DEC24500CE monthly,
NIFTY26D2224000CE weekly) is kept as it is, since whether a contract is weekly is not in its row.
Tick sizes in the CSV are rupees already (Upstox's are paise).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from openalgo_gtt.domain.symbols import (
    _INDEX_ALIASES, DERIVATIVE_TYPES, FUTURE, SEGMENT_TO_EXCHANGE, format_expiry, format_strike, plain_decimal,
)

# Kite's exchange -> the gateway's segment (Upstox's names, see domain/symbols.py).
KITE_EXCHANGE_TO_SEGMENT: dict[str, str] = {
    "NSE": "NSE_EQ",
    "BSE": "BSE_EQ",
    "NFO": "NSE_FO",
    "BFO": "BSE_FO",
    "CDS": "NCD_FO",
    "BCD": "BCD_FO",
    "MCX": "MCX_FO",
}
_INDEX_SEGMENT = {"NSE": "NSE_INDEX", "BSE": "BSE_INDEX", "MCX": "MCX_INDEX", "NFO": "NSE_INDEX",
                  "BFO": "BSE_INDEX"}
KITE_INDICES = "INDICES"


def segment_of_exchange(exchange: str) -> str:
    """The gateway's segment for a Kite exchange ("NFO" -> "NSE_FO"); unknown ones as they are."""
    return KITE_EXCHANGE_TO_SEGMENT.get(exchange, exchange)


def _decimal(raw) -> Decimal | None:
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _expiry(raw) -> date | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _index_symbol(name: str, trading_symbol: str) -> str:
    for candidate in ("".join(trading_symbol.split()).upper(), "".join(name.split()).upper()):
        if candidate in _INDEX_ALIASES:
            return _INDEX_ALIASES[candidate]
    return "".join(trading_symbol.split()).upper()


def kite_instrument_fields(row: dict) -> tuple | None:
    """InstrumentInfo's fields for one CSV row (a dict of strings), in field order, or None for
    rows the gateway cannot address (unknown exchange, a derivative missing a part)."""
    try:
        exchange = (row.get("exchange") or "").strip().upper()
        trading_symbol = (row.get("tradingsymbol") or "").strip()
        kind = (row.get("instrument_type") or "").strip().upper()
        kite_segment = (row.get("segment") or "").strip().upper()
        name = (row.get("name") or "").strip()
        if not exchange or not trading_symbol:
            return None
        if kite_segment == KITE_INDICES:
            segment = _INDEX_SEGMENT.get(exchange)
            if segment is None:
                return None
            symbol, expiry, strike = _index_symbol(name, trading_symbol), None, None
        else:
            segment = KITE_EXCHANGE_TO_SEGMENT.get(exchange)
            if segment is None:
                return None
            if kind in DERIVATIVE_TYPES:
                expiry = _expiry(row.get("expiry"))
                base = "".join(name.split()).upper()
                if expiry is None or not base:
                    return None
                if kind == FUTURE:
                    symbol, strike = f"{base}{format_expiry(expiry)}{FUTURE}", None
                else:
                    strike = _decimal(row.get("strike"))
                    if strike is None or strike <= 0:
                        return None
                    strike = plain_decimal(strike)
                    symbol = f"{base}{format_expiry(expiry)}{format_strike(strike)}{kind}"
            elif segment.endswith("_EQ"):
                symbol, expiry, strike = trading_symbol.upper(), None, None  # equities: the same on both sides
            else:
                return None
        tick = _decimal(row.get("tick_size"))
        lot = int(_decimal(row.get("lot_size")) or 1)
        return (
            f"{exchange}:{trading_symbol}", segment, SEGMENT_TO_EXCHANGE[segment], symbol, trading_symbol,
            name or None, kind or None, lot if lot > 0 else 1,
            plain_decimal(tick) if tick is not None and tick > 0 else Decimal(0), expiry, strike, None,
        )
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None
