"""The instrument master: loading Upstox's file into `instruments`, and the in-memory index
every request resolves (symbol, exchange) through.

A load replaces the whole table in one transaction and appends an `instrument_loads` row in the
same transaction; the highest `instrument_loads.id` is the generation. Every process keeps an
`InstrumentIndex` and rebuilds it when it notices a newer generation, so a reload by one worker
(or by the CLI) reaches all of them without any signalling.
"""
from __future__ import annotations

import bisect
import difflib
import gzip
import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import requests
from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from openalgo_gtt.domain.symbols import InstrumentInfo, instrument_fields, plain_decimal
from openalgo_gtt.store.models import Instrument, InstrumentLoad

log = logging.getLogger(__name__)

SAMPLE_SOURCE = "bundled:sample_instruments.json"
DOWNLOAD_TIMEOUT = (10, 60)  # connect, read (seconds between bytes, not the whole download)
_GZIP_MAGIC = b"\x1f\x8b"
# Rows per executemany call: large enough that per-call overhead vanishes, small enough that
# the parameter list for one call stays a few MB.
_INSERT_CHUNK = 20_000

_INSTRUMENTS = Instrument.__table__
_LOADS = InstrumentLoad.__table__
_COLUMNS = (
    "instrument_key", "segment", "exchange", "symbol", "trading_symbol", "name",
    "instrument_type", "lot_size", "tick_size", "expiry", "strike", "isin",
)
# PostgreSQL enforces VARCHAR lengths (SQLite does not): a row that would not fit is skipped
# rather than failing the whole load.
_LENGTHS = {c.name: c.type.length for c in _INSTRUMENTS.columns if getattr(c.type, "length", None)}


class InstrumentLoadError(RuntimeError):
    """A load that did not complete; the previous instrument set is still in place."""


class UnknownInstrument(LookupError):
    """No instrument has this (symbol, exchange); `suggestions` holds close symbols, best first."""

    def __init__(self, symbol: str, exchange: str, suggestions: Iterable[str] = ()):
        self.symbol = symbol
        self.exchange = exchange
        self.suggestions = list(suggestions)
        message = f"Unknown symbol {symbol!r} on exchange {exchange!r}"
        if self.suggestions:
            message += f"; did you mean {', '.join(self.suggestions)}?"
        super().__init__(message)


@dataclass(frozen=True)
class LoadReport:
    rows_loaded: int
    rows_skipped: int
    per_segment: dict[str, int]
    source: str
    seconds: float
    generation: int | None = None  # the instrument_loads.id this load wrote


# --- reading the master -------------------------------------------------------------------------


def _parse_file(path: Path) -> list:
    """A master file's rows. Gzip is recognised by its magic bytes, whatever the file is called."""
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
        opener = gzip.open if compressed else open
        with opener(path, "rb") as fh:
            rows = json.loads(fh.read())
    except (OSError, EOFError) as exc:  # missing file, corrupt or truncated gzip
        raise InstrumentLoadError(f"cannot read instrument master {path}: {exc}") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InstrumentLoadError(f"instrument master {path} is not valid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise InstrumentLoadError(
            f"instrument master {path} is a JSON {type(rows).__name__}, expected an array of rows"
        )
    return rows


def _download(url: str, progress: bool) -> Path:
    """Stream `url` to a temporary file (the master is tens of MB) and return its path."""
    fd, name = tempfile.mkstemp(prefix="instruments-", suffix=".download")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as resp:
            resp.raise_for_status()
            # With a Content-Encoding the header counts compressed bytes but we see decoded ones.
            length = resp.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() and "Content-Encoding" not in resp.headers else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                      desc="instrument master", disable=not progress) as bar:
                for chunk in resp.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as exc:
        path.unlink(missing_ok=True)
        raise InstrumentLoadError(f"download of instrument master {url} failed: {exc}") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


SAMPLE_PATH = Path(__file__).resolve().parents[1] / "data" / "sample_instruments.json"


def _read_source(source, progress: bool) -> tuple[list, str]:
    """(rows, label) for a path, an http(s) URL, or None (the bundled sample)."""
    if source is None:
        # Beside the code rather than importlib.resources: under an editable install imported
        # from another working directory (gunicorn), the package's resource reader fails.
        return _parse_file(SAMPLE_PATH), SAMPLE_SOURCE
    label = os.fspath(source)
    if label.lower().startswith(("http://", "https://")):
        path = _download(label, progress)
        try:
            return _parse_file(path), label
        finally:
            path.unlink(missing_ok=True)
    return _parse_file(Path(label)), label


# --- mapping and writing ------------------------------------------------------------------------


def _to_records(rows: list) -> tuple[list[tuple], int, Counter]:
    """Rows -> insertable tuples (InstrumentInfo's field order, which is _COLUMNS), the number
    skipped, and counts per segment. Tuples rather than InstrumentInfo objects or dicts: this
    runs once per row of a 150k-row file.

    A key seen twice keeps its first row: the table's primary key would otherwise fail the load.
    """
    records: list[tuple] = []
    seen: set[str] = set()
    per_segment: Counter = Counter()
    key_max, symbol_max, ts_max = _LENGTHS["instrument_key"], _LENGTHS["symbol"], _LENGTHS["trading_symbol"]
    type_max, isin_max, name_max = _LENGTHS["instrument_type"], _LENGTHS["isin"], _LENGTHS["name"]
    for row in rows:
        fields = instrument_fields(row)
        if fields is None:
            continue
        key, segment, _, symbol, trading_symbol, name, instrument_type, _, _, _, _, isin = fields
        if (key in seen or len(key) > key_max or len(symbol) > symbol_max or len(trading_symbol) > ts_max
                or (instrument_type is not None and len(instrument_type) > type_max)
                or (isin is not None and len(isin) > isin_max)):
            continue
        if name is not None and len(name) > name_max:  # descriptive only: shorten, keep the row
            fields = fields[:5] + (name[:name_max],) + fields[6:]
        seen.add(key)
        per_segment[segment] += 1
        records.append(fields)
    return records, len(rows) - len(records), per_segment


def _insert_records(conn, records: list[tuple]) -> None:
    statement = insert(_INSTRUMENTS)
    if conn.dialect.name != "sqlite":
        # PostgreSQL: Core executemany, which psycopg's dialect batches into multi-row VALUES.
        for start in range(0, len(records), _INSERT_CHUNK):
            chunk = records[start:start + _INSERT_CHUNK]
            conn.execute(statement, [dict(zip(_COLUMNS, record)) for record in chunk])
        return
    # SQLite: the same INSERT, compiled by SQLAlchemy, but executed with positional tuples.
    # Core's per-row parameter handling more than doubles the insert (about 1.8s vs 0.75s for
    # 150k rows), which alone would break the load-time budget. The values are converted with
    # the columns' own bind processors, so what lands in the table is what Core would write; only
    # a few hundred distinct ticks, strikes and expiries exist, so each conversion is memoised.
    compiled = statement.compile(dialect=conn.dialect)
    if tuple(compiled.positiontup) != _COLUMNS:  # a schema change this fast path doesn't know
        raise InstrumentLoadError(f"unexpected INSERT parameter order {compiled.positiontup}")
    converters = []
    for position, name in enumerate(_COLUMNS):
        processor = _INSTRUMENTS.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if processor is not None:
            converters.append((position, processor, {None: None}))
    # Building the (exchange, symbol) index once after the insert is ~30% cheaper than updating
    # it row by row. SQLite's DDL is transactional: a failed load rolls the index back too.
    indexes = list(_INSTRUMENTS.indexes)
    for index in indexes:
        index.drop(conn, checkfirst=True)
    for start in range(0, len(records), _INSERT_CHUNK):
        chunk = records[start:start + _INSERT_CHUNK]
        if converters:
            chunk = _convert_columns(chunk, converters)
        conn.exec_driver_sql(compiled.string, chunk)
    for index in indexes:
        index.create(conn)


def _convert_columns(chunk: list[tuple], converters) -> list[tuple]:
    """Apply bind processors column-wise, each once per distinct value (memo shared by chunks)."""
    columns = list(zip(*chunk))
    for position, processor, memo in converters:
        column = columns[position]
        for value in set(column).difference(memo):
            memo[value] = processor(value)
        columns[position] = map(memo.__getitem__, column)
    return list(zip(*columns))


# --- loading ------------------------------------------------------------------------------------


def load_master(engine: Engine, source, *, progress: bool = False) -> LoadReport:
    """Replace the instrument set with `source` (a path, .gz or not; an http(s) URL; or None for
    the bundled sample). All or nothing: on any failure the previous set stays in place."""
    started = time.perf_counter()
    rows, label = _read_source(source, progress)
    records, skipped, per_segment = _to_records(rows)
    del rows  # the parsed JSON is the bulk of the memory; let it go before writing
    if not records:
        # Replacing a working set with nothing is never what anyone wants from a bad file.
        raise InstrumentLoadError(f"instrument master {label} has no usable rows ({skipped} skipped)")

    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Serialises concurrent loads (two deletes + inserts would collide on the primary
                # key) while plain SELECTs, i.e. index rebuilds in other processes, carry on.
                conn.execute(text(f'LOCK TABLE "{_INSTRUMENTS.name}" IN SHARE ROW EXCLUSIVE MODE'))
            conn.execute(delete(_INSTRUMENTS))
            _insert_records(conn, records)
            result = conn.execute(insert(_LOADS).values(
                loaded_at=datetime.now(UTC),
                source=label[: _LOADS.c.source.type.length],
                rows=len(records),
            ))
            generation = result.inserted_primary_key[0]
    except SQLAlchemyError as exc:
        raise InstrumentLoadError(f"writing instrument master {label} failed: {exc}") from exc

    report = LoadReport(
        rows_loaded=len(records),
        rows_skipped=skipped,
        per_segment=dict(sorted(per_segment.items())),
        source=label,
        seconds=time.perf_counter() - started,
        generation=generation,
    )
    log.info("loaded %d instruments (%d skipped) from %s in %.2fs",
             report.rows_loaded, report.rows_skipped, label, report.seconds)
    return report


def ensure_instruments(engine: Engine) -> LoadReport | None:
    """Load the bundled sample when the table is empty, so a fresh machine works offline."""
    with engine.connect() as conn:
        has_rows = conn.execute(select(_INSTRUMENTS.c.instrument_key).limit(1)).first() is not None
    return None if has_rows else load_master(engine, None)


def current_generation(engine: Engine) -> int | None:
    """The id of the latest completed load (None before the first)."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(_LOADS.c.id))).scalar()


# --- the in-memory index ------------------------------------------------------------------------


class _Snapshot:
    """One immutable-once-published view of the instrument set. Readers hold a reference to a
    whole snapshot, so a rebuild swaps every dict at once."""

    __slots__ = ("by_exchange", "by_key", "_sorted")

    def __init__(self, infos: Iterable[InstrumentInfo]):
        # exchange -> symbol -> info, both upper case. Nested rather than keyed by a tuple: no
        # tuple per instrument in memory, none built per lookup.
        self.by_exchange: dict[str, dict[str, InstrumentInfo]] = {}
        self.by_key: dict[str, InstrumentInfo] = {}
        self._sorted: dict[str, list[str]] = {}
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

    def __init__(self, engine: Engine | None, *, check_seconds: float = 5.0):
        self._engine = engine
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
        symbols = snapshot.by_exchange.get(exchange) or snapshot.by_exchange.get(exchange.upper())
        info = (symbols.get(symbol) or symbols.get(symbol.upper())) if symbols else None
        if info is None:
            names = snapshot.sorted_symbols(exchange.upper())
            raise UnknownInstrument(symbol, exchange, _suggest(names, symbol.upper()))
        return info

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
            self._snapshot = _build_snapshot(self._engine)
            self._generation = generation
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

    columns = [_INSTRUMENTS.c[name] for name in _COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(_INSTRUMENTS.c.instrument_key)).all()
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
