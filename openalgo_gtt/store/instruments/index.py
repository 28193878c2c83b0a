"""The in-memory instrument index every request resolves (symbol, exchange) through.

Every process keeps an `InstrumentIndex` and rebuilds it when it notices a newer generation (the
highest `instrument_loads.id`, which each load appends; see load.py), so a reload by one worker
(or by the CLI) reaches all of them without any signalling.
"""
from __future__ import annotations

import bisect
import difflib
import logging
import threading
import time
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from openalgo_gtt.domain.clock import ist_today
from openalgo_gtt.domain.symbols import InstrumentInfo, continuous_future, future_root, nth_future, plain_decimal
from openalgo_gtt.store.instruments.master import COLUMNS
from openalgo_gtt.store.tables import INSTRUMENT_LOADS as _LOADS
from openalgo_gtt.store.tables import INSTRUMENTS

log = logging.getLogger(__name__)


class UnknownInstrument(LookupError):
    """No instrument has this (symbol, exchange); `suggestions` holds close symbols, best first."""

    def __init__(self, symbol: str, exchange: str, suggestions: Iterable[str] = (), reason: str = ""):
        self.symbol = symbol
        self.exchange = exchange
        self.suggestions = list(suggestions)
        message = f"Unknown symbol {symbol!r} on exchange {exchange!r}" + (f": {reason}" if reason else "")
        if self.suggestions:
            message += f"; did you mean {', '.join(self.suggestions)}?"
        super().__init__(message)


def current_generation(engine: Engine) -> int | None:
    """The id of the latest completed load (None before the first)."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(_LOADS.c.id))).scalar()


def _master_of(engine: Engine, generation: int | None) -> str | None:
    """Whose master load `generation` was ("upstox" for loads before the column existed)."""
    if generation is None:
        return None
    with engine.connect() as conn:
        return conn.execute(select(_LOADS.c.broker).where(_LOADS.c.id == generation)).scalar() or "upstox"


# --- the in-memory index ------------------------------------------------------------------------


class _Snapshot:
    """One immutable-once-published view of the instrument set. Readers hold a reference to a
    whole snapshot, so a rebuild swaps every dict at once."""

    __slots__ = ("by_exchange", "by_key", "_sorted", "_futures")

    def __init__(self, infos: Iterable[InstrumentInfo]):
        # exchange -> symbol -> info, both upper case. Nested rather than keyed by a tuple: no
        # tuple per instrument in memory, none built per lookup.
        self.by_exchange: dict[str, dict[str, InstrumentInfo]] = {}
        self.by_key: dict[str, InstrumentInfo] = {}
        self._sorted: dict[str, list[str]] = {}
        self._futures: dict[str, dict[str, list[InstrumentInfo]]] | None = None
        collisions = 0
        for info in infos:
            self.by_key[info.instrument_key] = info
            symbols = self.by_exchange.get(info.exchange)
            if symbols is None:
                symbols = self.by_exchange.setdefault(info.exchange.upper(), {})
                self.by_exchange[info.exchange] = symbols  # same dict: stored names are upper
            symbol = info.symbol.upper()
            if symbol == info.symbol:
                symbol = info.symbol  # keep one string object, not an equal copy
            held = symbols.get(symbol)
            if held is not None:
                collisions += 1
                # Two rows, one symbol (rare; e.g. a second series of a stock): the plain
                # equity series wins, otherwise the first by instrument key.
                if not (info.instrument_type == "EQ" and held.instrument_type != "EQ"):
                    continue
            symbols[symbol] = info
        if collisions:
            log.info("instrument index: %d symbols shared by more than one instrument", collisions)

    def futures(self, exchange: str, root: str) -> list[InstrumentInfo]:
        """The futures of one root on one exchange (built on the first continuous ticker)."""
        if self._futures is None:
            futures: dict[str, dict[str, list[InstrumentInfo]]] = {}
            for info in self.by_key.values():
                found = future_root(info)
                if found is not None:
                    futures.setdefault(info.exchange.upper(), {}).setdefault(found, []).append(info)
            self._futures = futures
        return self._futures.get(exchange, {}).get(root, [])

    def sorted_symbols(self, exchange: str) -> list[str]:
        # Built on the first miss per exchange: only the error path needs it.
        names = self._sorted.get(exchange)
        if names is None:
            names = sorted(self.by_exchange.get(exchange, ()))
            self._sorted[exchange] = names
        return names


_SUGGESTION_POOL = 5000  # difflib over more candidates than this takes too long for a request


def _suggest(names: list[str], symbol: str, limit: int = 5) -> list[str]:
    """Close matches for `symbol` among sorted `names`. Big exchanges (NFO has ~100k contracts)
    are first narrowed to the names sharing the longest prefix that still leaves a few."""
    pool = names
    if len(names) > _SUGGESTION_POOL:
        lo = hi = bisect.bisect_left(names, symbol)
        for k in range(len(symbol), 0, -1):
            prefix = symbol[:k]
            lo = bisect.bisect_left(names, prefix)
            hi = bisect.bisect_left(names, prefix + "\U0010ffff")
            if hi - lo >= limit:
                break
        if hi - lo > _SUGGESTION_POOL or hi - lo < limit:
            middle = bisect.bisect_left(names, symbol)
            lo = max(0, middle - _SUGGESTION_POOL // 2)
            hi = lo + _SUGGESTION_POOL
        pool = names[lo:hi]
    return difflib.get_close_matches(symbol, pool, n=limit, cutoff=0.6)


class InstrumentIndex:
    """(symbol, exchange) -> InstrumentInfo, in memory.

    A lookup is dict access; at most every `check_seconds` one lookup also asks the database for
    the current generation and rebuilds when it moved. A rebuild happens under a lock while other
    threads keep reading the previous snapshot.
    """

    def __init__(self, engine: Engine | None, *, check_seconds: float = 5.0, master: str | None = None):
        """`master`: whose instruments the gateway needs ("upstox" or "kite"); a lookup in a
        master loaded for the other broker is refused, not answered with a key that broker
        cannot use. None (tools, tests) takes whatever is loaded."""
        self._engine = engine
        self._wanted = master
        self._loaded: str | None = None  # whose master the current snapshot is
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._generation: int | None = None
        self._next_check = 0.0 if engine is not None else float("inf")

    @classmethod
    def from_engine(cls, engine: Engine, *, check_seconds: float = 5.0) -> InstrumentIndex:
        """An index built now from the `instruments` table."""
        index = cls(engine, check_seconds=check_seconds)
        index.refresh(force=True)
        return index

    @classmethod
    def from_instruments(cls, infos: Iterable[InstrumentInfo]) -> InstrumentIndex:
        """A fixed index over the given instruments, with no database (tests, tools)."""
        index = cls(None)
        index._snapshot = _Snapshot(infos)
        return index

    @property
    def generation(self) -> int | None:
        return self._generation

    def __len__(self) -> int:
        return len(self._current().by_key)

    def lookup(self, symbol: str, exchange: str) -> InstrumentInfo:
        snapshot = self._current()
        if self._wanted is not None and self._loaded != self._wanted and self._engine is not None:
            raise UnknownInstrument(symbol, exchange, reason=self._wrong_master())
        symbols = snapshot.by_exchange.get(exchange) or snapshot.by_exchange.get(exchange.upper())
        info = (symbols.get(symbol) or symbols.get(symbol.upper())) if symbols else None
        if info is None:
            continuous = continuous_future(symbol, exchange)
            if continuous is not None:
                # TradingView's NIFTY1! / NIFTY2!: the near or next month's future, by expiry.
                root, month, fo_exchange = continuous
                info = nth_future(snapshot.futures(fo_exchange, root), month, ist_today())
                if info is not None:
                    return info
                which = ("near", "next")[month - 1]
                raise UnknownInstrument(symbol, exchange, reason=f"the instrument master has no {which} month "
                                                                 f"future of {root} on {fo_exchange}")
            names = snapshot.sorted_symbols(exchange.upper())
            raise UnknownInstrument(symbol, exchange, _suggest(names, symbol.upper()))
        return info

    def _wrong_master(self) -> str:
        load = "python run.py instruments load"
        if self._loaded is None:
            return f"no instrument master is loaded; load {self._wanted.capitalize()}'s with {load}"
        return (f"the loaded instrument master is {self._loaded.capitalize()}'s and this gateway drives "
                f"{self._wanted.capitalize()}: load {self._wanted.capitalize()}'s with {load}")

    def symbols_starting(self, prefix: str, exchange: str, limit: int = 10) -> list[str]:
        """Up to `limit` symbols of `exchange` that start with `prefix` (any case), in order: the
        trader's page suggests them as a symbol is typed. The sorted list is built once per
        exchange and snapshot; each call is then a binary search."""
        prefix = prefix.strip().upper()
        if not prefix:
            return []
        names = self._current().sorted_symbols(exchange.strip().upper())
        start = bisect.bisect_left(names, prefix)
        found = []
        for name in names[start:start + limit]:
            if not name.startswith(prefix):
                break
            found.append(name)
        return found

    def is_continuous(self, symbol: str, exchange: str) -> bool:
        """Whether (symbol, exchange) is a continuous future ticker that `lookup` maps to a contract."""
        return continuous_future(symbol, exchange) is not None

    def by_key(self, instrument_key: str) -> InstrumentInfo | None:
        return self._current().by_key.get(instrument_key)

    def refresh(self, force: bool = True) -> bool:
        """Rebuild from the database; unless `force`, only when the generation changed.
        Returns whether a rebuild happened."""
        if self._engine is None:
            return False
        # Threads that find a rebuild under way keep using the old snapshot instead of queueing;
        # only the very first build (nothing to serve yet) and explicit refreshes wait.
        if not self._lock.acquire(blocking=force or self._snapshot is None):
            return False
        try:
            self._next_check = time.monotonic() + self._check_seconds
            # The generation is read BEFORE the rows: if a load commits in between, we hold new
            # rows under the old number and merely rebuild once more; never old rows forever.
            generation = current_generation(self._engine)
            if not force and self._snapshot is not None and generation == self._generation:
                return False
            snapshot = _build_snapshot(self._engine)
            # Whose master it is goes out before the rows do: a thread that sees the new snapshot
            # must never judge it by the previous (or no) owner.
            self._loaded = _master_of(self._engine, generation)
            self._generation = generation
            self._snapshot = snapshot
            return True
        finally:
            self._lock.release()

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() < self._next_check:
            return snapshot
        try:
            self.refresh(force=False)
        except SQLAlchemyError:
            if self._snapshot is None:
                raise
            # A database hiccup should not stop orders for known instruments: serve the last
            # set and try again after the next interval.
            log.warning("instrument generation check failed; serving the previous set", exc_info=True)
        return self._snapshot


def _build_snapshot(engine: Engine) -> _Snapshot:
    decimals: dict[Decimal, Decimal] = {}
    interned: dict[object, object] = {}

    def plain(value: Decimal | None) -> Decimal | None:
        # Numeric(12, 4) comes back as Decimal("0.0500"); show 0.05, and share equal objects.
        if value is None:
            return None
        cached = decimals.get(value)
        if cached is None:
            cached = plain_decimal(value)
            decimals[value] = cached
        return cached

    def share(value):
        # Segments, exchanges, names and expiries repeat across thousands of contracts.
        return interned.setdefault(value, value) if value is not None else None

    columns = [INSTRUMENTS.c[name] for name in COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(INSTRUMENTS.c.instrument_key)).all()
    infos = [
        InstrumentInfo(
            instrument_key=key,
            segment=share(segment),
            exchange=share(exchange),
            symbol=symbol,
            trading_symbol=trading_symbol,
            name=share(name),
            instrument_type=share(instrument_type),
            lot_size=lot_size,
            tick_size=plain(tick),
            expiry=share(expiry),
            strike=plain(strike),
            isin=isin,
        )
        for key, segment, exchange, symbol, trading_symbol, name, instrument_type, lot_size,
        tick, expiry, strike, isin in rows
    ]
    return _Snapshot(infos)
