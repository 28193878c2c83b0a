"""From a caller's order to what the broker will be sent: the instrument resolved, a quote
fetched when the bracket strategy needs one, and the domain's plan (prices on the tick,
warnings, legs). Shared by place and modify."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.domain.intent import BRACKET, OCO, PlaceIntent, Plan
from openalgo_gtt.domain.plan_bracket import plan_bracket
from openalgo_gtt.domain.plan_single import plan_single
from openalgo_gtt.domain.model import UPSTOX_FEATURES, BrokerFeatures
from openalgo_gtt.domain.oco import OcoPlan, plan_oco, plan_two_leg
from openalgo_gtt.domain.strategy import BracketPcts
from openalgo_gtt.domain.symbols import InstrumentInfo
from openalgo_gtt.store.instruments import InstrumentIndex


@dataclass(frozen=True)
class Order:
    """A place or modify request: the instrument as the caller named it, and the intent."""

    symbol: str
    exchange: str
    intent: PlaceIntent
    strategy: str | None = None
    force: bool = False
    queue: bool = True  # a place that cannot be sent within the caller's patience is queued (202), else 429
    expires_at: datetime | None = None  # the caller's own expiry (UTC); the watcher cancels it then


class Planner:
    def __init__(self, broker: Broker, instruments: InstrumentIndex, pcts: BracketPcts):
        self._broker = broker
        self._instruments = instruments
        self._pcts = pcts
        # What the broker's GTTs can express shapes every plan (a broker without the attribute,
        # such as a test double, is taken to be Upstox-like).
        self._features: BrokerFeatures = getattr(broker, "features", UPSTOX_FEATURES)

    def contract(self, symbol: str, exchange: str) -> str | None:
        """The contract a continuous future ticker (TradingView's NIFTY1!, NIFTY2!) stands for
        now, as the plan resolves it; None for an ordinary symbol."""
        if not self._instruments.is_continuous(symbol, exchange):
            return None
        return self._instruments.lookup(symbol, exchange).symbol

    def plan(self, order: Order) -> tuple[InstrumentInfo, Plan | OcoPlan]:
        instrument = self._instruments.lookup(order.symbol, order.exchange)
        intent = order.intent
        features = self._features
        if intent.trigger_type == OCO:
            if features.native_oco:
                return instrument, plan_two_leg(intent, instrument, features)
            return instrument, plan_oco(intent, instrument, features)
        if intent.trigger_type == BRACKET:
            quote = self._broker.quotes([instrument.instrument_key]).get(instrument.instrument_key)
            open_price = quote.open if quote else None
            last_price = quote.last_price if quote else None
            return instrument, plan_bracket(intent, instrument, open_price, last_price, self._pcts, features=features)
        return instrument, plan_single(intent, instrument, features=features)
