"""What the sandbox broker needs kept, as a protocol: it is given a `SandboxStorage` and never
imports the store (the composition root wires in `store.sandbox.SandboxRepository`).

Every write transaction starts with `claim()`, which increments a stored generation: that makes
writers from several processes take turns, and every GTT and quote written carries the new
generation as its revision, which is how the others find what to reload. A saved status change
is conditional on the status it was changed from, so a rule can never fire twice: the second
writer gets `Conflict`, reloads and tries again.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Mapping, Protocol, Sequence

from openalgo_gtt.brokers.sandbox.model import Changes, Gtt
from openalgo_gtt.brokers.sandbox.quotes import QuoteState
from openalgo_gtt.domain.paper import PaperOrder, PaperTrade, Position


class Conflict(RuntimeError):
    """The stored state no longer holds what this process believed: reload and try again."""


@dataclass
class Meta:
    """The counters of one write transaction: its generation, and the last GTT and order ids."""

    generation: int
    gtt_seq: int
    order_seq: int


@dataclass(frozen=True)
class Fill:
    """One filled child order of a fired rule."""

    order_id: str
    gtt_id: str
    strategy: str
    instrument_key: str
    transaction_type: str
    quantity: int
    price: Decimal
    ltp: Decimal
    filled_at: datetime


@dataclass(frozen=True)
class InstrumentNames:
    """How people name an instrument key: OpenAlgo's symbol and exchange, and Upstox's trading symbol."""

    symbol: str
    exchange: str
    trading_symbol: str


class StateReader(Protocol):
    """One read transaction."""

    def generation(self) -> int:
        """The last committed write's generation."""

    def load_gtts(self, since: int | None = None) -> list[Gtt]:
        """Every GTT (with `since`: those changed after that generation), rules in order."""

    def load_quotes(self, since: int | None = None) -> list[tuple[str, QuoteState]]:
        """Every quote (with `since`: those changed after that generation), by instrument key."""

    def instrument(self, instrument_key: str) -> InstrumentNames | None:
        """The instrument master's names for a key; None when the master does not have it."""

    def instruments(self, instrument_keys: Sequence[str]) -> dict[str, InstrumentNames]:
        """The master's names of several keys in one query; keys it does not have are left out."""


class StateWriter(StateReader, Protocol):
    """One write transaction: committed when its context exits cleanly, else rolled back."""

    def claim(self) -> Meta:
        """Start the write: take the writers' turn by incrementing the generation."""

    def save_changes(self, changes: Changes, gtts: Mapping[str, Gtt], revision: int) -> None:
        """Write one journal of engine changes (`gtts`: the current state of each GTT named in
        it). Raises Conflict when a rule's stored status is not the one it was changed from."""

    def save_quotes(self, quotes: Sequence[tuple[str, QuoteState]], stored: set[str], revision: int, *,
                    prices_only: set[str] = frozenset()) -> None:
        """Write changed quotes; `stored` are the keys known to have a row (those written here
        are added to it); of those, `prices_only` changed only their last price and time."""

    def save_counters(self, meta: Meta) -> None:
        """Keep the GTT and order id counters as `meta` leaves them."""

    def open_orders(self) -> list[PaperOrder]:
        """The paper orders still open, oldest first."""

    def paper_order(self, order_id: str) -> PaperOrder | None:
        """One paper order in any state; None when there is no such order."""

    def save_paper(self, new: Sequence[PaperOrder], changed: Sequence[PaperOrder],
                   trades: Sequence[PaperTrade]) -> None:
        """Insert `new` orders and `trades`, update `changed` orders (an open order now filled)."""

    def positions(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Position]:
        """The stored positions of these (instrument key, product) pairs."""

    def save_positions(self, positions: Sequence[Position], stored: set[tuple[str, str]]) -> None:
        """Write positions; `stored` are the pairs that already have a row."""


class SandboxStorage(Protocol):
    def ensure_meta(self) -> None:
        """Create the counters once; safe to call from racing processes."""

    def reading(self) -> AbstractContextManager[StateReader]:
        ...

    def writing(self) -> AbstractContextManager[StateWriter]:
        ...

    def fills(self, gtt_id: str | None = None) -> list[Fill]:
        """Filled child orders, oldest first (of one GTT when `gtt_id` is given)."""

    def paper_orders(self) -> list[PaperOrder]:
        """Every paper order, oldest first."""

    def paper_trades(self) -> list[PaperTrade]:
        """Every paper trade, oldest first."""

    def paper_positions(self) -> list[Position]:
        """Every position ever opened (closed ones with quantity 0), by instrument and product."""

    def paper_keys(self) -> set[str]:
        """The instruments of open paper orders and open positions."""
