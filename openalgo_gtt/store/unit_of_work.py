"""The store as the use cases see it: its repositories, and a unit of work that makes several of
their writes one transaction.

A place attempt (domain/place_attempt.py) moves from state to state; each move is one unit of
work (its intent with the trade it takes, before the broker is called; then the GTT, the answer
kept for duplicates and the audit row; or the trade given back), so a refusal or a crash never
leaves half of one.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterator

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import SYSTEM_CLOCK, Clock
from openalgo_gtt.domain.fill import LegFill
from openalgo_gtt.domain.notifications import Event
from openalgo_gtt.domain.place_attempt import AttemptState, PlaceAttempt
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.domain.watch import Change
from openalgo_gtt.store.audit_log import AuditRows
from openalgo_gtt.store.gtt_orders import GttOrders
from openalgo_gtt.store.order_fills import OrderFills
from openalgo_gtt.store import paper_funds
from openalgo_gtt.store.outbox import Outbox
from openalgo_gtt.store.place_attempts import PlaceAttempts
from openalgo_gtt.store.request_records import RequestRecords, Snapshot
from openalgo_gtt.store.staged_exits import StagedExits
from openalgo_gtt.store.trade_counter import TradeCounters


@dataclass(frozen=True)
class UnitOfWork:
    """One open transaction; every method writes in it. It commits when the `with` block of
    `Store.unit_of_work()` ends normally, and rolls back everything when it raises."""

    _conn: Connection
    _store: "Store"

    def claim_request(self, api_key_name: str, idem_key: str, endpoint: str, request_hash: str,
                      ttl: timedelta) -> int | None:
        return self._store.requests.claim_in(self._conn, api_key_name, idem_key, endpoint, request_hash, ttl)

    def begin_attempt(self, record_id: int, plan: dict, reserved_day: date | None,
                      started_at: datetime, *, queued_at: datetime | None = None) -> PlaceAttempt:
        return self._store.attempts.begin(self._conn, record_id, plan, reserved_day, started_at,
                                          self._store.requests.holder, queued_at=queued_at)

    def queue_position(self, attempt_id: int) -> int:
        return self._store.attempts.queue_position(attempt_id, self._conn)

    def move_attempt(self, attempt: PlaceAttempt, to: AttemptState, **values) -> bool:
        """Compare-and-set the attempt's state; False when another process moved it first."""
        return self._store.attempts.move(self._conn, attempt, to, self._store.clock.now(),
                                         holder=self._store.requests.holder, **values)

    def take_trade(self, day: date, limit: int | None) -> int | None:
        return self._store.trades.take(self._conn, day, limit)

    def hold_trade_turn(self, day: date) -> None:
        """The places' turn (the day's trade counter row) until this unit of work ends, no trade taken."""
        self._store.trades.hold(self._conn, day)

    def give_back_trade(self, day: date) -> None:
        self._store.trades.give_back(day, self._conn)

    def add_trigger(self, order: dict, legs: list[tuple[str, str, str]]) -> None:
        self._store.orders.add(self._conn, order, legs)

    def finish_request(self, record_id: int, state: str, status: int | None, body: object) -> None:
        self._store.requests.finish(record_id, state, status, body, conn=self._conn)

    def request(self, record_id: int):
        return self._store.requests.get(record_id, self._conn)

    def answer_if_open(self, record_id: int, body: object, abandoned: Snapshot | None = None) -> bool:
        return self._store.requests.answer_if_open(record_id, body, self._conn, abandoned)

    def fault_if_held_by(self, record_id: int, holder: str, quiet_since: datetime) -> None:
        self._store.requests.fault_if_held_by(record_id, holder, quiet_since, self._conn)

    def audit(self, entry: AuditEntry) -> None:
        self._store.audit.write_in(self._conn, entry)

    def exit_settled(self, bracket_id: str, **outcome) -> None:
        """A staged bracket's exit, final (store/staged_exits.py)."""
        self._store.exits.settled(self._conn, bracket_id, holder=self._store.requests.holder,
                                  now=self._store.clock.now(), **outcome)

    def set_status(self, trigger_id: str, status: str, cancelled_at: datetime | None = None,
                   message: str | None = None) -> bool:
        return self._store.orders.set_status(trigger_id, status, message, cancelled_at=cancelled_at, conn=self._conn)

    def replaced(self, trigger_id: str, *, quantity: int, legs: list, request_id: str) -> None:
        self._store.orders.replaced(trigger_id, quantity=quantity, legs=legs, request_id=request_id, conn=self._conn)

    def hold_legs(self, trigger_id: str, legs: list) -> None:
        self._store.orders.hold_legs(trigger_id, legs, conn=self._conn)

    def record_change(self, change: Change) -> bool:
        """The watcher's change to one trigger; False when another observer recorded it first."""
        return self._store.orders.record_change(self._conn, change)

    def save_fill(self, leg: LegFill) -> None:
        """A fired leg's order and what the broker last said of it (store/order_fills.py)."""
        self._store.fills.save(self._conn, leg)

    def paper_account(self, exclude_attempt: int | None = None):
        """The sandbox paper account's commitments, positions and open orders, in this
        transaction (store/paper_funds.py); `exclude_attempt` is the place being checked."""
        return paper_funds.paper_inputs(self._conn, exclude_attempt)

    def add_event(self, event: Event, url_ids: list[str] | tuple[str, ...]) -> int:
        """An event for the trader, due to each of `url_ids` (see services/notifications.py)."""
        return self._store.outbox.add(self._conn, event, url_ids)


class StoreUnavailable(Exception):
    """The database cannot be reached."""


class Store:
    """Every repository over one engine, built once per process."""

    def __init__(self, engine: Engine, sessions: sessionmaker[Session], holder: str, clock: Clock = SYSTEM_CLOCK):
        self.engine = engine
        self.sessions = sessions
        self.clock = clock
        self.requests = RequestRecords(engine, sessions, holder, clock)
        self.attempts = PlaceAttempts(engine)
        self.exits = StagedExits(sessions)
        self.trades = TradeCounters(engine)
        self.orders = GttOrders(sessions)
        self.audit = AuditRows(engine)
        self.outbox = Outbox(engine)
        self.fills = OrderFills(engine)

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database unreachable: {type(exc.orig or exc).__name__}") from exc

    def paper_account(self):
        """As `UnitOfWork.paper_account`, in a transaction of its own (the funds route, a modify)."""
        with self.engine.connect() as conn:
            return paper_funds.paper_inputs(conn)

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        with self.engine.begin() as conn:
            yield UnitOfWork(conn, self)
