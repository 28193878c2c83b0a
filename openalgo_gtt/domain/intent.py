"""What a caller asks for (a `PlaceIntent`, parsed from OpenAlgo's body) and what planning it
gives (a `Plan`): the values passed between the API, the planners and the place use case.

The planners are `plan_single.py` and `plan_bracket.py` (and `oco.py` for the two-leg); the
Upstox facts that shape them are written there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from openalgo_gtt.domain.model import GttRequest
from openalgo_gtt.domain.strategy import AUTO

# The caller's trigger types: OpenAlgo's SINGLE and OCO, plus this gateway's BRACKET. (SINGLE is
# also the broker's GTT type of that name: domain.model.SINGLE.)
BRACKET = "BRACKET"
OCO = "OCO"
# The caller's pricetypes. Every child order a broker places is a LIMIT (see the planners).
LIMIT = "LIMIT"
MARKET = "MARKET"

DEFAULT_MARKET_PROTECTION = 5  # percent


class InstrumentLike(Protocol):
    """What the planner needs of an instrument (`domain.symbols.InstrumentInfo` fits)."""

    instrument_key: str
    segment: str
    symbol: str  # OpenAlgo's: what messages name, never the broker's key
    exchange: str
    lot_size: int
    tick_size: Decimal  # rupees

    @property
    def is_derivative(self) -> bool: ...


@dataclass(frozen=True)
class PlaceIntent:
    """A place/modify request after parsing and type coercion (the API layer fills it)."""

    trigger_type: str | None  # SINGLE | BRACKET | OCO; None only in a modify that leaves it as it is
    action: str  # BUY | SELL
    product: str  # CNC | NRML | MIS | MTF
    quantity: int
    pricetype: str = LIMIT  # LIMIT | MARKET
    price: Decimal = Decimal(0)
    triggerprice_sl: Decimal = Decimal(0)
    triggerprice_tg: Decimal = Decimal(0)
    stoploss: Decimal | None = None
    target: Decimal | None = None
    entry_mode: str = AUTO  # auto | manual | percent
    entry_value: Decimal | None = None
    target_type: str = AUTO
    target_value: Decimal | None = None
    sl_type: str = AUTO
    sl_value: Decimal | None = None
    trailing_gap: Decimal | None = None
    market_protection: int | None = None


@dataclass(frozen=True)
class Plan:
    """What to send to the broker, what to tell the caller, and what to record."""

    request: GttRequest
    warnings: tuple[str, ...] = ()
    prices: dict[str, Decimal] = field(default_factory=dict)  # entry (+ target, stoploss)
    legs: tuple[dict[str, Any], ...] = ()
