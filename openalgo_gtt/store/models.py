"""SQLAlchemy models: the ORM-mapped part of the schema (schema.py gathers it all; Alembic
migrations in `migrations/` create it).

Every timestamp is stored timezone-aware in UTC; IST appears only where a human reads it.
Prices are `Numeric` (exact) in rupees.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from openalgo_gtt.store.tables import INSTRUMENTS, metadata


class Base(DeclarativeBase):
    metadata = metadata  # shared with the Core tables (tables.py)


class ApiKey(Base):
    """A caller's credential. An argon2 hash of key + pepper is kept, never the key; a key issued
    since migration 0006 (`<public_id>.<secret>`) also keeps its public identifier, the part
    before the dot, so a presented key finds its one row without trying every hash. `lookup_hmac`
    is an HMAC of the whole key under a secret derived from the pepper: written when a key is
    made, or at the first successful argon2 check of one made before; it finds an old 64-hex key's
    row and checks any key without argon2 (services/apikeys.py)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    public_id: Mapped[str | None] = mapped_column(String(16), unique=True, index=True)
    lookup_hmac: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)


class PepperCheck(Base):
    """One row: HMAC(pepper, "openalgo-gtt pepper check"), recorded by the first process that
    uses the database, so a process holding another pepper (a command run from another working
    directory) is refused instead of making keys the server cannot verify."""

    __tablename__ = "api_key_pepper_check"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    check_value: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRecord(Base):
    """Exactly one row per API request, success or failure. Secrets are redacted before writing."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    method: Mapped[str] = mapped_column(String(8))
    endpoint: Mapped[str] = mapped_column(String(128), index=True)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    api_key_name: Mapped[str | None] = mapped_column(String(64))
    request_body: Mapped[object | None] = mapped_column(JSON)
    response_body: Mapped[object | None] = mapped_column(JSON)
    http_status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    broker_calls: Mapped[object | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)


class TradeCounter(Base):
    """Successful places per IST day, incremented atomically in SQL (the daily trade limit)."""

    __tablename__ = "trade_counters"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Instrument(Base):
    """One row of the instrument master (the table is Core: tables.py says why)."""

    __table__ = INSTRUMENTS


class GttOrder(Base):
    """A trigger this gateway placed, as its caller knows it."""

    __tablename__ = "gtt_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger_id: Mapped[str] = mapped_column(String(64), unique=True)  # what the caller holds
    broker_ids: Mapped[object] = mapped_column(JSON)  # the broker's GTT ids (two for an OCO)
    instrument_key: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    trigger_type: Mapped[str] = mapped_column(String(16))  # single | bracket | two-leg
    action: Mapped[str] = mapped_column(String(4))
    product: Mapped[str] = mapped_column(String(8))  # as the caller sent it: CNC, NRML, MIS, MTF
    quantity: Mapped[int] = mapped_column(Integer)
    legs: Mapped[object] = mapped_column(JSON)  # the rules sent, with each leg's role and price
    strategy: Mapped[str | None] = mapped_column(String(64))  # the caller's strategy tag
    status: Mapped[str] = mapped_column(String(16), index=True)  # active, triggered, cancelled, ...
    status_message: Mapped[str | None] = mapped_column(Text)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    modified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When its state last changed, wherever (a rule fired, expired or was cancelled in the app,
    # or the status moved): every change shows a time in the book.
    state_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The caller's expiry (expires_at on place): the watcher cancels the trigger then. NULL: none.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    request_id: Mapped[str] = mapped_column(String(36))
    api_key_name: Mapped[str | None] = mapped_column(String(64))
    # The watcher's last view of the rules that left the waiting states, as canonical JSON text
    # ({broker id: {rule: status}}; NULL while every rule waits). Text, not JSON, so a write can
    # be conditional on it being unchanged (PostgreSQL's json has no equality).
    broker_state: Mapped[str | None] = mapped_column(Text)


class GttLeg(Base):
    """One broker GTT behind a caller's trigger (an OCO has two), and its last known state."""

    __tablename__ = "gtt_legs"

    broker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trigger_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))  # single | bracket | stoploss | target
    status: Mapped[str] = mapped_column(String(16))  # the ENTRY rule's broker status, e.g. SCHEDULED
    message: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Lease(Base):
    """A named lease, so exactly one process runs a singleton job (the OCO watcher)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RequestRecord(Base):
    """Exactly-once for writes: one row per (API key, idempotency key). It holds the first
    definitive answer (replayed to duplicates). A place's attempts, each with the intent written
    before the broker is called, are rows of `place_attempts` pointing here."""

    __tablename__ = "request_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_name: Mapped[str] = mapped_column(String(64))
    idem_key: Mapped[str] = mapped_column(String(160))  # "key:<caller's key>" or "body:<sha256>"
    endpoint: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the operation and body an idempotency key was first used for: the same key with
    # another body or operation is refused, not answered with the first request's outcome.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # pending | done | fault
    holder: Mapped[str] = mapped_column(String(128))  # the process handling it (host:pid:token)
    response_status: Mapped[int | None] = mapped_column(Integer)
    # none_as_null: "no answer" must be SQL NULL, not the JSON value null.
    response_body: Mapped[object | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    # sqlite_autoincrement: a purged record's id is never reused (place_attempts.record_id).
    __table_args__ = (UniqueConstraint("api_key_name", "idem_key", name="uq_request_records_key"),
                      {"sqlite_autoincrement": True})


class PlaceAttemptRow(Base):
    """One place attempt (domain/place_attempt.py): its state, moved only by compare-and-set, and
    the intent written before the broker call, so a lost answer or a crash is found again at the
    broker instead of being placed twice, and a GTT the broker makes late is still matched."""

    __tablename__ = "place_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(Integer, index=True)  # the request record (it may since be purged)
    state: Mapped[str] = mapped_column(String(16), index=True)
    plan: Mapped[object] = mapped_column(JSON)  # the broker requests, their roles, prices and the order
    reserved_day: Mapped[date | None] = mapped_column(Date)  # the day whose trade it holds
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    holder: Mapped[str] = mapped_column(String(128))
    trigger_id: Mapped[str | None] = mapped_column(String(64))  # once recorded, found late or cancelled late
    resolution: Mapped[str | None] = mapped_column(String(255))  # what became of it, as a person reads it
    # The broker GTTs a lapsed attempt's late pass cancelled: never matched to another attempt.
    late_gtt_ids: Mapped[object | None] = mapped_column(JSON(none_as_null=True))
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a burst's place, when queued
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)  # the request that made it


class StagedExit(Base):
    """The exit of a bracket the gateway stages itself (Kite has no bracket GTT): one row per
    bracket, inserted (claimed) before the exit is sent, so it is placed once across restarts
    and worker processes. `state`: placing (claimed, the outcome not yet known), placed, or
    refused (the entry's order did not fill; no exit), or failed (the broker refused the exit)."""

    __tablename__ = "staged_exits"

    trigger_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the bracket's trigger id
    entry_gtt_id: Mapped[str] = mapped_column(String(64))
    entry_order_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    exit_gtt_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str] = mapped_column(String(128))  # the process that claimed it (host:pid:token)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NotifyEvent(Base):
    """Something the trader is told about (domain.notifications.Event as JSON), written in the
    transaction of the state change that caused it. Kept as the trigger's event history."""

    __tablename__ = "notify_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    trigger_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[object] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NotifyDelivery(Base):
    """One event to one notification URL: the outbox row the sender works through. The URL
    itself is a secret and is never stored; `url_id` is an HMAC of it under the pepper."""

    __tablename__ = "notify_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, index=True)
    url_id: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed | dropped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)  # redacted: never a URL's secret
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_notify_deliveries_due", "url_id", "state", "next_attempt_at"),)


class OrderFillRow(Base):
    """The order a fired GTT leg placed, and what became of it at the broker (domain/fill.py):
    looked up when the fire is seen, then again only while the order is open."""

    __tablename__ = "order_fills"

    broker_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the leg's broker GTT
    leg: Mapped[str] = mapped_column(String(16), primary_key=True)  # entry | target | stoploss | single
    trigger_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(4))  # the fired rule's side: BUY | SELL
    quantity: Mapped[int | None] = mapped_column(Integer)  # the rule's quantity
    status: Mapped[str] = mapped_column(String(16))  # as the broker words it; UNKNOWN until looked up
    filled_quantity: Mapped[int] = mapped_column(Integer)
    average_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    message: Mapped[str | None] = mapped_column(Text)
    final: Mapped[bool] = mapped_column(Boolean, index=True)
    checks: Mapped[int] = mapped_column(Integer)
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
