"""Bracket price math: the seed engine's ENTRY / TARGET / STOPLOSS strategy.

Auto (the default):  ENTRY = open +/- 4%,  TARGET = ENTRY +/- 1%,  STOPLOSS = ENTRY -/+ 1%
(signs for BUY / SELL). Each price can instead be given as a price ("manual") or as a
percentage ("percent"). Every price is rounded to the tick; TARGET and STOPLOSS are computed
from the *rounded* ENTRY, the price that is actually sent (IDEA open 10.00, tick 0.01:
ENTRY 10.40, TARGET 10.504 -> 10.50, STOPLOSS 10.296 -> 10.30).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from openalgo_gtt.domain.model import BUY, SELL
from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.prices import on_tick, round_to_tick

AUTO = "auto"
MANUAL = "manual"
PERCENT = "percent"
MODES = (AUTO, MANUAL, PERCENT)

_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class BracketPcts:
    """The auto percentages (configurable; the seed engine's are 4 / 1 / 1)."""

    entry: Decimal = Decimal(4)
    target: Decimal = Decimal(1)
    sl: Decimal = Decimal(1)


DEFAULT_PCTS = BracketPcts()


@dataclass(frozen=True)
class BracketPrices:
    entry: Decimal
    target: Decimal
    stoploss: Decimal
    warnings: tuple[str, ...] = ()


def normalize_mode(mode: str | None, field: str) -> str:
    """'auto' when absent; otherwise one of MODES, case-insensitive."""
    if mode is None or str(mode).strip() == "":
        return AUTO
    value = str(mode).strip().lower()
    if value not in MODES:
        raise DomainError(f"{field} must be one of auto, manual, percent (got {mode!r})")
    return value


def _percent(value: Decimal | None, default: Decimal, mode: str, field: str) -> Decimal:
    """The percentage to apply: the configured one for auto, the caller's for percent."""
    if mode == AUTO:
        return Decimal(default)
    if value is None:
        raise DomainError(f"{field} is required when its mode is percent (the percentage)")
    if value < 0:
        # A negative percentage would silently flip the side of the price: refuse it.
        raise DomainError(f"{field} must not be negative (got {value})")
    return value


def _manual(value: Decimal | None, tick: Decimal, field: str, warnings: list[str]) -> Decimal:
    if value is None:
        raise DomainError(f"{field} is required when its mode is manual (the price)")
    if value <= 0:
        raise DomainError(f"{field} must be a positive price (got {value})")
    rounded = round_to_tick(value, tick)
    if not on_tick(value, tick):
        warnings.append(f"{field} {value} is not a multiple of the tick size {tick}; rounded to {rounded}")
    return rounded


def _away(base: Decimal, pct: Decimal, up: bool) -> Decimal:
    """base moved by pct percent, up or down (exact Decimal arithmetic, rounded later)."""
    factor = pct / _HUNDRED
    return base * (1 + factor) if up else base * (1 - factor)


def _reference_open(open_price: Decimal | None, last_price: Decimal | None) -> Decimal:
    # Before the market opens Upstox reports open as 0 or not at all: use the last price then.
    if open_price is not None and open_price > 0:
        return open_price
    if last_price is not None and last_price > 0:
        return last_price
    raise DomainError("no open or last price is available for this instrument to compute the entry")


def bracket_prices(
    action: str,
    open_price: Decimal | None,
    last_price: Decimal | None,
    entry_mode: str | None,
    entry_value: Decimal | None,
    target_type: str | None,
    target_value: Decimal | None,
    sl_type: str | None,
    sl_value: Decimal | None,
    tick: Decimal,
    pcts: BracketPcts = DEFAULT_PCTS,
) -> BracketPrices:
    """ENTRY, TARGET and STOPLOSS on the tick, checked to be on the right sides of each other:
    BUY needs SL < ENTRY < TARGET, SELL needs TARGET < ENTRY < SL. Raises DomainError otherwise."""
    action = str(action).strip().upper()
    if action not in (BUY, SELL):
        raise DomainError(f"action must be BUY or SELL (got {action!r})")
    buy = action == BUY
    entry_mode = normalize_mode(entry_mode, "entry_mode")
    target_type = normalize_mode(target_type, "target_type")
    sl_type = normalize_mode(sl_type, "sl_type")
    warnings: list[str] = []

    if entry_mode == MANUAL:
        entry = _manual(entry_value, tick, "entry_value", warnings)
    else:
        pct = _percent(entry_value, pcts.entry, entry_mode, "entry_value")
        # BUY enters on a breakout above the open, SELL on a breakdown below it.
        entry = round_to_tick(_away(_reference_open(open_price, last_price), pct, up=buy), tick)

    if target_type == MANUAL:
        target = _manual(target_value, tick, "target_value", warnings)
    else:
        pct = _percent(target_value, pcts.target, target_type, "target_value")
        target = round_to_tick(_away(entry, pct, up=buy), tick)

    if sl_type == MANUAL:
        stoploss = _manual(sl_value, tick, "sl_value", warnings)
    else:
        pct = _percent(sl_value, pcts.sl, sl_type, "sl_value")
        stoploss = round_to_tick(_away(entry, pct, up=not buy), tick)

    prices = {"entry": str(entry), "target": str(target), "stoploss": str(stoploss)}
    if min(entry, target, stoploss) <= 0:
        raise DomainError(
            f"bracket prices must all be positive: entry {entry}, target {target}, stoploss {stoploss}",
            details=prices,
        )
    ordered = stoploss < entry < target if buy else target < entry < stoploss
    if not ordered:
        rule = "stoploss < entry < target" if buy else "target < entry < stoploss"
        raise DomainError(
            f"invalid bracket for {action}: needs {rule} after rounding to the tick {tick}, "
            f"got entry {entry}, target {target}, stoploss {stoploss}",
            details=prices,
        )
    return BracketPrices(entry=entry, target=target, stoploss=stoploss, warnings=tuple(warnings))
