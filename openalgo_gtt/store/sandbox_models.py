"""Tables of the sandbox broker (simulated Upstox GTTs), all prefixed `sandbox_`.

The sandbox keeps its trigger index in memory and these tables as the truth it is rebuilt from:
a restart loses no GTT, no fill and no trailing stop's position.

Every write transaction first increments `sandbox_meta.generation` (the single row, id 1). That
row lock serialises writers across processes, and every GTT and quote row written carries the
generation as `revision`, so a process that sees a newer generation reloads only the rows
changed since the one it last saw.

Timestamps are timezone-aware UTC; prices are exact `Numeric` rupees.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openalgo_gtt.store.models import Base

PRICE = Numeric(18, 6)


class SandboxMeta(Base):
    """One row (id 1): the change generation and the counters GTT and order ids are made from."""

    __tablename__ = "sandbox_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    gtt_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    order_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class SandboxGtt(Base):
    """One simulated GTT, as Upstox would report it (its rules are `sandbox_gtt_rules`)."""

    __tablename__ = "sandbox_gtts"

    gtt_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # GTT-S + digits
    type: Mapped[str] = mapped_column(String(16))  # SINGLE | MULTIPLE
    instrument_key: Mapped[str] = mapped_column(String(64))
    trading_symbol: Mapped[str] = mapped_column(String(128), default="")
    transaction_type: Mapped[str] = mapped_column(String(4))  # the ENTRY side
    product: Mapped[str] = mapped_column(String(8))  # I | D | MTF
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revision: Mapped[int] = mapped_column(BigInteger, index=True)  # generation of the last change


class SandboxGttRule(Base):
    """One rule of a sandbox GTT. A trailing stop's current position is its `trigger_price`."""

    __tablename__ = "sandbox_gtt_rules"

    gtt_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("sandbox_gtts.gtt_id", ondelete="CASCADE"), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(16), primary_key=True)  # ENTRY | TARGET | STOPLOSS
    position: Mapped[int] = mapped_column(Integer)  # order of the rule in the GTT
    trigger_type: Mapped[str] = mapped_column(String(16))  # ABOVE | BELOW | IMMEDIATE
    trigger_price: Mapped[Decimal] = mapped_column(PRICE)
    trailing_gap: Mapped[Decimal | None] = mapped_column(PRICE)
    market_protection: Mapped[int | None] = mapped_column(Integer)
    transaction_type: Mapped[str] = mapped_column(String(4))  # the child order's side
    status: Mapped[str] = mapped_column(String(16))  # Upstox's rule statuses
    message: Mapped[str | None] = mapped_column(Text)
    order_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SandboxQuote(Base):
    """The latest tick per instrument: last price and the day's open."""

    __tablename__ = "sandbox_quotes"

    instrument_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_price: Mapped[Decimal] = mapped_column(PRICE)
    open: Mapped[Decimal] = mapped_column(PRICE)
    open_day: Mapped[date] = mapped_column(Date)  # the IST day `open` belongs to
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revision: Mapped[int] = mapped_column(BigInteger, index=True)


class SandboxFill(Base):
    """A fired rule's child order, filled as a LIMIT at the trigger price."""

    __tablename__ = "sandbox_fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(32), unique=True)
    gtt_id: Mapped[str] = mapped_column(String(32), index=True)
    strategy: Mapped[str] = mapped_column(String(16))
    instrument_key: Mapped[str] = mapped_column(String(64))
    transaction_type: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(PRICE)
    ltp: Mapped[Decimal] = mapped_column(PRICE)  # the last price that filled it
    filled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


AMOUNT = Numeric(24, 6)


class SandboxOrder(Base):
    """A paper order: a fired rule's child order (domain/paper.py), open until a price fills it."""

    __tablename__ = "sandbox_orders"

    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    gtt_id: Mapped[str] = mapped_column(String(32), index=True)
    strategy: Mapped[str] = mapped_column(String(16))
    instrument_key: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    product: Mapped[str] = mapped_column(String(8))  # I | D | MTF
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    pricetype: Mapped[str] = mapped_column(String(8))  # MARKET | LIMIT
    price: Mapped[Decimal] = mapped_column(PRICE)  # the LIMIT price; 0 for MARKET
    trigger_price: Mapped[Decimal] = mapped_column(PRICE)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | complete | cancelled
    average_price: Mapped[Decimal | None] = mapped_column(PRICE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SandboxTrade(Base):
    """A paper trade: one order filled, whole, at one price."""

    __tablename__ = "sandbox_trades"

    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    instrument_key: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    product: Mapped[str] = mapped_column(String(8))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(PRICE)
    traded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SandboxPosition(Base):
    """A paper position per instrument and product: net quantity, the cost of the open quantity
    and the realised P&L (average cost; domain/paper.py `apply_trade`)."""

    __tablename__ = "sandbox_positions"

    instrument_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    product: Mapped[str] = mapped_column(String(8), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal] = mapped_column(AMOUNT)
    realised: Mapped[Decimal] = mapped_column(AMOUNT)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
