"""Upstox instrument-master rows -> OpenAlgo symbols and exchanges. Pure functions, no I/O.

OpenAlgo's formats (see the project's reference notes):
  equity   IDEA                       (the exchange's own symbol)
  future   NIFTY29DEC26FUT            [BASE][DD][MMM][YY]FUT
  option   NIFTY29DEC2624500CE        [BASE][DD][MMM][YY][STRIKE][CE|PE], no trailing ".0"
  index    NIFTY, BANKNIFTY, SENSEX   (OpenAlgo's short names)

Derivative symbols are built from the row's structured fields (underlying symbol, expiry epoch,
strike, instrument type) because those are what Upstox keys on; `trading_symbol`
("NIFTY 24500 CE 29 DEC 26") is parsed only to fill in what a row lacks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from openalgo_gtt.domain.clock import IST

SEGMENT_TO_EXCHANGE: dict[str, str] = {
    "NSE_EQ": "NSE",
    "BSE_EQ": "BSE",
    "NSE_FO": "NFO",
    "BSE_FO": "BFO",
    "NCD_FO": "CDS",
    "BCD_FO": "BCD",
    "MCX_FO": "MCX",
    "NSE_INDEX": "NSE_INDEX",
    "BSE_INDEX": "BSE_INDEX",
    "MCX_INDEX": "MCX_INDEX",
}
EXCHANGE_TO_SEGMENT: dict[str, str] = {v: k for k, v in SEGMENT_TO_EXCHANGE.items()}

EQUITY_SEGMENTS = frozenset({"NSE_EQ", "BSE_EQ"})
INDEX_SEGMENTS = frozenset({"NSE_INDEX", "BSE_INDEX", "MCX_INDEX"})
DERIVATIVE_SEGMENTS = frozenset({"NSE_FO", "BSE_FO", "NCD_FO", "BCD_FO", "MCX_FO"})

FUTURE = "FUT"
CALL = "CE"
PUT = "PE"
DERIVATIVE_TYPES = frozenset({FUTURE, CALL, PUT})

DEFAULT_TICK = Decimal("0.05")

# Expiry epochs are instants; the contract's date is its date in India whatever zone the server
# runs in (an instant early on the IST day is still the previous day in UTC): see clock.IST.

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NUMBER = {m: i for i, m in enumerate(_MONTHS, start=1)}

# The master's index names vary in case and spacing between files and over time ("Nifty 50",
# "NIFTY 50", "NIFTY"), so these are matched after upper-casing and removing spaces.
_INDEX_ALIASES: dict[str, str] = {
    "NIFTY": "NIFTY",
    "NIFTY50": "NIFTY",
    "NIFTYBANK": "BANKNIFTY",
    "BANKNIFTY": "BANKNIFTY",
    "NIFTYFINSERVICE": "FINNIFTY",
    "NIFTYFINANCIALSERVICES": "FINNIFTY",
    "FINNIFTY": "FINNIFTY",
    "NIFTYMIDSELECT": "MIDCPNIFTY",
    "NIFTYMIDCAPSELECT": "MIDCPNIFTY",
    "MIDCPNIFTY": "MIDCPNIFTY",
    "NIFTYNEXT50": "NIFTYNXT50",
    "NIFTYNXT50": "NIFTYNXT50",
    "INDIAVIX": "INDIAVIX",
    "SENSEX": "SENSEX",
    "BSESENSEX": "SENSEX",
    "BANKEX": "BANKEX",
    "BSEBANKEX": "BANKEX",
    "SENSEX50": "SENSEX50",
    "BSESENSEX50": "SENSEX50",
}

# "NIFTY 24500 CE 29 DEC 26", "USDINR 83.25 PE 26 JUN 26", "CRUDEOIL FUT 18 DEC 26".
_DERIVATIVE_TS = re.compile(
    r"^(?P<base>\S+(?: \S+)*?) "
    r"(?:(?P<fut>FUT)|(?P<strike>\d+(?:\.\d+)?) (?P<opt>CE|PE)) "
    r"(?P<day>\d{1,2}) (?P<month>[A-Z]{3}) (?P<year>\d{2})$"
)


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """One tradable instrument as the gateway sees it. Prices (tick, strike) are rupees."""

    instrument_key: str
    segment: str
    exchange: str  # OpenAlgo exchange: NSE, NFO, MCX, NSE_INDEX, ...
    symbol: str  # OpenAlgo symbol
    trading_symbol: str  # Upstox's
    name: str | None
    instrument_type: str | None
    lot_size: int
    tick_size: Decimal
    expiry: date | None
    strike: Decimal | None
    isin: str | None

    @property
    def is_derivative(self) -> bool:
        return self.segment in DERIVATIVE_SEGMENTS


# --- small converters ---------------------------------------------------------------------------
# A full master has ~150k rows but only a few hundred distinct ticks, expiries, strikes and
# underlyings, so each conversion is memoised on the raw value: the load stays close to the cost
# of parsing the JSON.


def plain_decimal(value: Decimal) -> Decimal:
    """Drop trailing zeros without ever producing exponent form (Decimal("1E+1")): 0.0500 -> 0.05."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _to_decimal(raw) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        # str() of a float is its shortest round-trip form, so 7.5 stays 7.5, not 7.4999...
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


@lru_cache(maxsize=1024)
def _tick(raw) -> Decimal:
    paise = _to_decimal(raw)
    if paise is None or paise <= 0:
        return DEFAULT_TICK
    return plain_decimal(paise / 100)


def tick_size_rupees(raw) -> Decimal:
    """The master's tick size is in paise (RELIANCE 10.0 = Rs 0.10). The only place it is converted.

    Missing, zero or unreadable ticks default to Rs 0.05, the NSE/BSE equity and F&O tick.
    """
    try:
        return _tick(raw)
    except TypeError:  # unhashable: not a tick anyone could mean
        return DEFAULT_TICK


def format_expiry(day: date) -> str:
    """date(2026, 12, 29) -> "29DEC26"."""
    return f"{day.day:02d}{_MONTHS[day.month - 1]}{day.year % 100:02d}"


def format_strike(strike: Decimal) -> str:
    """24500 -> "24500", 7.5 -> "7.5", 83.2500 -> "83.25"."""
    return format(plain_decimal(strike), "f")


@lru_cache(maxsize=8192)
def _expiry(raw) -> tuple[date, str] | None:
    """(date in IST, "29DEC26") for an expiry in epoch milliseconds."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        epoch_ms = int(raw)
        if epoch_ms <= 0:
            return None
        day = datetime.fromtimestamp(epoch_ms / 1000, IST).date()
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return day, format_expiry(day)


def expiry_date(raw) -> date | None:
    """Upstox's expiry (epoch milliseconds) as the contract's date in IST."""
    try:
        parts = _expiry(raw)
    except TypeError:
        return None
    return parts[0] if parts else None


@lru_cache(maxsize=65536)
def _strike(raw) -> tuple[Decimal, str] | None:
    """(strike, its text in a symbol) for a positive strike price, else None."""
    value = _to_decimal(raw)
    if value is None or value <= 0:
        return None
    value = plain_decimal(value)
    return value, format(value, "f")


@lru_cache(maxsize=65536)
def _compact(text) -> str:
    """Upper case without any whitespace ("Nifty 50" -> "NIFTY50"); "" for nothing."""
    return "".join(str(text).split()).upper() if text else ""


def _parse_trading_symbol(trading_symbol) -> tuple[str, str, Decimal | None, date] | None:
    """(base, type, strike, expiry) from "NIFTY 24500 CE 29 DEC 26" / "NIFTY FUT 29 DEC 26"."""
    match = _DERIVATIVE_TS.match(" ".join(str(trading_symbol or "").upper().split()))
    if not match:
        return None
    try:
        expiry = date(2000 + int(match["year"]), _MONTH_NUMBER[match["month"]], int(match["day"]))
    except (KeyError, ValueError):
        return None
    if match["fut"]:
        return _compact(match["base"]), FUTURE, None, expiry
    return _compact(match["base"]), match["opt"], plain_decimal(Decimal(match["strike"])), expiry


# --- symbols per segment ------------------------------------------------------------------------


def _index_symbol(row: dict) -> str | None:
    trading_symbol = _compact(row.get("trading_symbol"))
    key_name = _compact(str(row.get("instrument_key") or "").partition("|")[2])
    for candidate in (trading_symbol, _compact(row.get("name")), key_name):
        if candidate in _INDEX_ALIASES:
            return _INDEX_ALIASES[candidate]
    return trading_symbol or key_name or None


def _derivative(row: dict) -> tuple[str, str, Decimal | None, date] | None:
    """(symbol, type, strike, expiry) for a futures/options row, or None when it cannot be told."""
    get = row.get  # this runs for most of a 150k-row master's rows
    kind = get("instrument_type")
    base = _compact(get("underlying_symbol")) or _compact(get("asset_symbol"))
    expiry = _expiry(get("expiry"))
    strike = _strike(get("strike_price")) if kind != FUTURE else None

    if kind in DERIVATIVE_TYPES and base and expiry and (kind == FUTURE or strike):
        # The usual case: every part is a structured field.
        if kind == FUTURE:
            return f"{base}{expiry[1]}{FUTURE}", kind, None, expiry[0]
        return f"{base}{expiry[1]}{strike[1]}{kind}", kind, strike[0], expiry[0]

    # Something is missing: take it from the trading symbol (and only then from a one-word name;
    # for stock derivatives the name is the company's, "VODAFONE IDEA LIMITED").
    parsed = _parse_trading_symbol(row.get("trading_symbol"))
    kind = _compact(kind) or (parsed[1] if parsed else "")
    if kind not in DERIVATIVE_TYPES or (parsed and parsed[1] != kind):
        return None
    if not base:
        name = str(row.get("name") or "").strip()
        base = parsed[0] if parsed else (_compact(name) if len(name.split()) == 1 else "")
    day = expiry[0] if expiry else (parsed[3] if parsed else None)
    if not base or day is None:
        return None
    if kind == FUTURE:
        return f"{base}{format_expiry(day)}{FUTURE}", kind, None, day
    value = strike[0] if strike else (parsed[2] if parsed else None)
    if value is None or value <= 0:
        return None
    return f"{base}{format_expiry(day)}{format_strike(value)}{kind}", kind, value, day


def _symbol_parts(row: dict, segment) -> tuple[str, str | None, Decimal | None, date | None] | None:
    """(symbol, instrument type, strike, expiry), or None when the row cannot be mapped."""
    if segment in DERIVATIVE_SEGMENTS:
        return _derivative(row)
    if segment in EQUITY_SEGMENTS:
        symbol = _compact(row.get("trading_symbol"))
    elif segment in INDEX_SEGMENTS:
        symbol = _index_symbol(row)
    else:
        return None
    kind = row.get("instrument_type")
    return (symbol, kind if isinstance(kind, str) and kind else None, None, None) if symbol else None


def openalgo_symbol(row: dict) -> str | None:
    """The OpenAlgo symbol for a master row, or None when the row cannot be mapped."""
    try:
        parts = _symbol_parts(row, row.get("segment"))
    except (TypeError, ValueError, AttributeError):  # malformed field types
        return None
    return parts[0] if parts else None


def instrument_fields(row) -> tuple | None:
    """InstrumentInfo's fields for a master row, in field order, or None for rows the gateway
    cannot address. The loader uses the tuple directly; everyone else wants instrument_from_row."""
    try:
        get = row.get
        segment = get("segment")
        exchange = SEGMENT_TO_EXCHANGE.get(segment)
        key = get("instrument_key")
        if exchange is None or not key or not isinstance(key, str):
            return None
        parts = _derivative(row) if segment in DERIVATIVE_SEGMENTS else _symbol_parts(row, segment)
        if parts is None:
            return None
        symbol, instrument_type, strike, expiry = parts
        trading_symbol = get("trading_symbol") or symbol
        if not isinstance(trading_symbol, str):
            return None
        lot_size = get("lot_size")
        lot_size = int(lot_size) if lot_size else 1
        name, isin = get("name"), get("isin")
        return (
            key, segment, exchange, symbol, trading_symbol,
            name if isinstance(name, str) and name else None, instrument_type,
            lot_size if lot_size > 0 else 1, tick_size_rupees(get("tick_size")), expiry, strike,
            isin if isinstance(isin, str) and isin else None,
        )
    except (TypeError, ValueError, AttributeError, OverflowError):  # malformed field types
        return None


def instrument_from_row(row) -> InstrumentInfo | None:
    """An InstrumentInfo for a master row, or None for rows the gateway cannot address."""
    fields = instrument_fields(row)
    return InstrumentInfo(*fields) if fields else None


# --- TradingView's continuous futures ---------------------------------------------------------
# TradingView names a continuous future by its root and month: NIFTY1! is the near month's
# contract, NIFTY2! the next one's. The contract is chosen from the master by expiry order.

_CONTINUOUS = re.compile(r"^(?P<base>[A-Z0-9&_-]+?)(?P<month>[12])!$")
# The exchange TradingView shows such a ticker on -> the derivatives exchange of its contracts.
CONTINUOUS_FUTURE_EXCHANGE = {"NSE": "NFO", "NFO": "NFO", "BSE": "BFO", "BFO": "BFO", "MCX": "MCX"}


def continuous_future(symbol: str, exchange: str) -> tuple[str, int, str] | None:
    """(root, month: 1 near / 2 next, derivatives exchange) for a continuous ticker such as
    ("NIFTY1!", "NSE"); None for any other symbol."""
    match = _CONTINUOUS.match(symbol.strip().upper())
    target = CONTINUOUS_FUTURE_EXCHANGE.get(exchange.strip().upper())
    if match is None or target is None:
        return None
    return match["base"], int(match["month"]), target


def future_root(info: InstrumentInfo) -> str | None:
    """The root of a future (NIFTY for NIFTY29DEC26FUT), read off the symbol the master's
    structured fields built: the part before [DDMMMYY]FUT of its own expiry; None otherwise."""
    if info.instrument_type != FUTURE or info.expiry is None:
        return None
    suffix = f"{format_expiry(info.expiry)}{FUTURE}"
    symbol = info.symbol.upper()
    return symbol[:-len(suffix)] if symbol.endswith(suffix) and len(symbol) > len(suffix) else None


def nth_future(futures: list[InstrumentInfo], month: int, today: date) -> InstrumentInfo | None:
    """The month-th future (1 = near) among `futures` of one root still trading on `today`, by
    expiry; None when there are not that many."""
    live = sorted((f for f in futures if f.expiry is not None and f.expiry >= today),
                  key=lambda f: (f.expiry, f.instrument_key))
    return live[month - 1] if 0 < month <= len(live) else None
