"""The schema's MetaData, and the tables written without the ORM, in SQLAlchemy Core.

The instrument master's two tables are here rather than as ORM classes in models.py: `python
run.py instruments load` writes them in a process of its own, and importing the ORM (and every
model) would cost it a noticeable part of its run. models.py maps `Instrument` and
`InstrumentLoad` onto these same tables, and its `Base` uses this MetaData, so Alembic and the
test fixtures still see one schema (schema.py).
"""
from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, Numeric, String, Table

metadata = MetaData()

# One row of Upstox's (or Kite's) instrument master, with its OpenAlgo symbol and exchange.
# No secondary index: lookups use each process's in-memory index, so one would only slow the
# load (migration 0013 dropped the (exchange, symbol) one).
INSTRUMENTS = Table(
    "instruments", metadata,
    Column("instrument_key", String(64), primary_key=True),
    Column("segment", String(16), nullable=False),
    Column("exchange", String(16), nullable=False),  # OpenAlgo exchange: NSE, NFO, MCX, ...
    Column("symbol", String(64), nullable=False),  # OpenAlgo symbol: IDEA, NIFTY29DEC2624500CE
    Column("trading_symbol", String(128), nullable=False),  # the broker's
    Column("name", String(256)),
    Column("instrument_type", String(16)),
    Column("lot_size", Integer, nullable=False, default=1),
    Column("tick_size", Numeric(12, 4), nullable=False),  # rupees (Upstox's master has paise)
    Column("expiry", Date),
    Column("strike", Numeric(14, 4)),
    Column("isin", String(16)),
)

# One row per completed master load; the highest id is the generation every process compares.
INSTRUMENT_LOADS = Table(
    "instrument_loads", metadata,
    Column("id", Integer, primary_key=True),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("source", String(512), nullable=False),
    Column("rows", Integer, nullable=False),
    # Whose master it is: "upstox" (also the sandbox's) or "kite"; NULL for loads before 0009 (Upstox's).
    Column("broker", String(16)),
)
