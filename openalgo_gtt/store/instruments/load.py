"""Loading the instrument master: the whole `instruments` table replaced in one transaction.

The same transaction appends an `instrument_loads` row; the highest `instrument_loads.id` is the
generation every process's index compares (see index.py). A load that fails anywhere leaves
the previous set, and the previous generation, in place.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain

from sqlalchemy import Engine, delete, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from openalgo_gtt.store.instruments.kite_master import kite_records, read_kite_source
from openalgo_gtt.store.instruments.master import COLUMNS, InstrumentLoadError, read_source, to_records
from openalgo_gtt.store.tables import INSTRUMENT_LOADS as _LOADS
from openalgo_gtt.store.tables import INSTRUMENTS

log = logging.getLogger(__name__)

# Rows per executemany call: large enough that per-call overhead vanishes, small enough that
# the parameter list for one call stays a few MB.
_INSERT_CHUNK = 20_000


@dataclass(frozen=True)
class LoadReport:
    rows_loaded: int
    rows_skipped: int
    per_segment: dict[str, int]
    source: str
    seconds: float
    generation: int | None = None  # the instrument_loads.id this load wrote


# Each broker's master: (read a source into rows and a label, rows -> records). A broker whose
# instruments come in another file is one more entry here (and one more reader module).
MASTERS: dict[str, tuple[Callable, Callable]] = {
    "upstox": (read_source, to_records),
    "sandbox": (read_source, to_records),  # the sandbox models Upstox, master included
    "kite": (read_kite_source, kite_records),
}


def master_family(broker: str | None) -> str:
    """Whose master a broker uses: the sandbox models Upstox, master included."""
    return "upstox" if broker in (None, "sandbox") else broker


def load_master(engine: Engine, source, *, progress: bool = False, broker: str = "upstox") -> LoadReport:
    """Replace the instrument set with `source` (a path, .gz or not; an http(s) URL; or None for
    the bundled sample), read as `broker`'s master (Upstox's JSON, Kite's CSV). All or nothing:
    on any failure the previous set stays in place."""
    started = time.perf_counter()
    read, convert = MASTERS[broker]
    rows, label = read(source, progress)
    records, skipped, per_segment = convert(rows)
    del rows  # the parsed JSON is the bulk of the memory; let it go before writing
    if not records:
        # Replacing a working set with nothing is never what anyone wants from a bad file.
        raise InstrumentLoadError(f"instrument master {label} has no usable rows ({skipped} skipped)")

    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Serialises concurrent loads (two deletes + inserts would collide on the primary
                # key) while plain SELECTs, i.e. index rebuilds in other processes, carry on.
                conn.execute(text(f'LOCK TABLE "{INSTRUMENTS.name}" IN SHARE ROW EXCLUSIVE MODE'))
            conn.execute(delete(INSTRUMENTS))
            _insert_records(conn, records)
            result = conn.execute(insert(_LOADS).values(
                loaded_at=datetime.now(UTC),
                source=label[: _LOADS.c.source.type.length],
                rows=len(records),
                broker=master_family(broker),
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
        has_rows = conn.execute(select(INSTRUMENTS.c.instrument_key).limit(1)).first() is not None
    return None if has_rows else load_master(engine, None)


# --- writing the records ------------------------------------------------------------------------


def _insert_records(conn, records: list[tuple]) -> None:
    if conn.dialect.name == "sqlite":
        _insert_sqlite(conn, records)
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_postgresql(conn, records)
        return
    # Any other: Core executemany (a PostgreSQL driver other than psycopg 3 batches it too).
    statement = insert(INSTRUMENTS)
    for start in range(0, len(records), _INSERT_CHUNK):
        chunk = records[start:start + _INSERT_CHUNK]
        conn.execute(statement, [dict(zip(COLUMNS, record)) for record in chunk])


def _copy_postgresql(conn, records: list[tuple]) -> None:
    """PostgreSQL's COPY, PostgreSQL's own bulk-load path, through psycopg's copy API on the DBAPI
    connection of this transaction: several times faster than INSERTs of the same rows. A record
    is already in COLUMNS order, in types psycopg adapts (str, int, Decimal, date, None)."""
    cursor = conn.connection.cursor()
    try:
        with cursor.copy(f'COPY "{INSTRUMENTS.name}" ({", ".join(COLUMNS)}) FROM STDIN') as copy:
            for record in records:
                copy.write_row(record)
    except conn.dialect.loaded_dbapi.Error as exc:  # the raw driver's, which SQLAlchemy did not wrap
        raise InstrumentLoadError(f"PostgreSQL refused the instrument rows: {exc}") from exc
    finally:
        cursor.close()


# SQLite: rows per INSERT statement. One statement of many rows costs SQLite less per row than
# one execution per row; 80 rows x 12 columns is 960 parameters, under the 999 that the oldest
# SQLite builds allow.
_SQLITE_ROWS_PER_STATEMENT = 80
# SQLite: the load's page cache, in KiB. The whole table and its key index fit, so no page is
# spilled to the WAL mid-transaction and written there again; set back to the connection's own
# value afterwards (a pooled connection of the server can run a load too).
_SQLITE_LOAD_CACHE_KIB = 65_536


def _sqlite_insert_sql(rows: int) -> str:
    # A schema change this writer does not know fails the load rather than writing wrong columns.
    if set(INSTRUMENTS.c.keys()) != set(COLUMNS) or COLUMNS[8:11] != ("tick_size", "expiry", "strike"):
        raise InstrumentLoadError(f"instruments has columns {sorted(INSTRUMENTS.c.keys())}, "
                                  f"the SQLite load writes {sorted(COLUMNS)}")
    row = f'({", ".join("?" * len(COLUMNS))})'
    return f'INSERT INTO "{INSTRUMENTS.name}" ({", ".join(COLUMNS)}) VALUES {", ".join([row] * rows)}'


class _Memo(dict):
    """value -> its stored form, each distinct value converted once (a master has a few hundred
    distinct ticks, strikes and expiries across its rows)."""

    def __init__(self, convert: Callable):
        super().__init__({None: None})
        self._convert = convert

    def __missing__(self, value):
        stored = self[value] = self._convert(value)
        return stored


def _sqlite_values(records: list[tuple]) -> list:
    """Every record's values in SQLite's stored forms, one flat list: the forms are SQLAlchemy's
    for these column types there, Numeric as a float (sqlite3 binds no Decimal) and Date as ISO
    text (YYYY-MM-DD). Positions 8, 9 and 10 of a record are its tick size, expiry and strike
    (COLUMNS)."""
    numbers, days = _Memo(float), _Memo(date.isoformat)
    return list(chain.from_iterable(
        (*r[:8], numbers[r[8]], days[r[9]], numbers[r[10]], r[11]) for r in records))


def _insert_sqlite(conn, records: list[tuple]) -> None:
    """The DBAPI's executemany through SQLAlchemy's connection, with positional parameters:
    Core's per-row parameter handling (a dict per row, then its conversion) would cost about as
    much as SQLite's own work for a 150k-row master."""
    width, per = len(COLUMNS), _SQLITE_ROWS_PER_STATEMENT
    values = _sqlite_values(records)
    whole = len(records) - len(records) % per  # rows that fill whole statements
    step = per * width
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_LOAD_CACHE_KIB}")
    try:
        if whole:
            conn.exec_driver_sql(_sqlite_insert_sql(per),
                                 [tuple(values[i:i + step]) for i in range(0, whole * width, step)])
        if whole < len(records):
            conn.exec_driver_sql(_sqlite_insert_sql(1),
                                 [tuple(values[i:i + width]) for i in range(whole * width, len(values), width)])
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")
