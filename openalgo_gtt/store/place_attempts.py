"""Place attempts (domain/place_attempt.py): one row each, its state moved by compare-and-set."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.place_attempt import FINAL, OPEN, UNSETTLED, AttemptState, PlaceAttempt, check_move
from openalgo_gtt.store.models import PlaceAttemptRow

_t = PlaceAttemptRow.__table__

# Statements built once, with their values given at execution: every place runs both, and a
# statement built per call costs more to build than to execute.
_BEGIN = insert(_t).returning(_t.c.id)


@lru_cache(maxsize=None)
def _move_statement(columns: tuple[str, ...]):
    """The compare-and-set UPDATE that sets `columns` (one per distinct set of them)."""
    return (update(_t).where(_t.c.id == bindparam("where_id"), _t.c.state == bindparam("where_state"))
            .values({name: bindparam(name) for name in columns}))


def _attempt(row) -> PlaceAttempt:
    return PlaceAttempt(row.id, row.record_id, AttemptState(row.state), row.plan, row.reserved_day,
                        as_utc(row.started_at), as_utc(row.updated_at), row.holder, as_utc(row.queued_at))


@dataclass(frozen=True)
class QueueStats:
    """The queue of a burst's places, as health and the page show it."""

    length: int
    oldest_at: datetime | None  # when the oldest queued place was queued
    sent_last_minute: int  # queued places sent (and recorded) in the last 60 s


class PlaceAttempts:
    def __init__(self, engine: Engine):
        self._engine = engine

    def begin(self, conn: Connection, record_id: int, plan: dict, reserved_day: date | None, started_at: datetime,
              holder: str, *, queued_at: datetime | None = None) -> PlaceAttempt:
        """A new attempt, in the caller's transaction: SENDING (the transaction takes its trade),
        or QUEUED when `queued_at` is given (no trade until its turn)."""
        state = AttemptState.QUEUED if queued_at is not None else AttemptState.SENDING
        attempt_id = conn.execute(_BEGIN, {
            "record_id": record_id, "state": state.value, "plan": plan, "reserved_day": reserved_day,
            "started_at": started_at, "updated_at": started_at, "holder": holder, "queued_at": queued_at,
            "request_id": plan["order"].get("request_id")}).scalar_one()
        return PlaceAttempt(attempt_id, record_id, state, plan, reserved_day, started_at, started_at, holder, queued_at)

    def move(self, conn: Connection, attempt: PlaceAttempt, to: AttemptState, now: datetime, *, holder: str,
             trigger_id: str | None = None, resolution: str | None = None, keep_trade: bool = True,
             late_ids: list[str] | None = None, reserved_day: date | None = None,
             started_at: datetime | None = None) -> bool:
        """Compare-and-set: `attempt` moves to `to` only if its row is still in the state it was
        read in (the machine has no cycle, so the state alone tells). False when another process
        moved it first."""
        check_move(attempt.state, to)
        values = {"state": to.value, "updated_at": now, "holder": holder}
        if trigger_id is not None:
            values["trigger_id"] = trigger_id
        if resolution is not None:
            values["resolution"] = resolution[:255]
        if not keep_trade:
            values["reserved_day"] = None
        if reserved_day is not None:  # a queued place's trade, taken when its turn came
            values["reserved_day"] = reserved_day
        if started_at is not None:  # a queued place begun when its turn came
            values["started_at"] = started_at
        if late_ids is not None:
            values["late_gtt_ids"] = late_ids
        statement = _move_statement(tuple(values))
        return bool(conn.execute(statement, {**values, "where_id": attempt.id,
                                             "where_state": attempt.state.value}).rowcount)

    def get(self, attempt_id: int) -> PlaceAttempt | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_t).where(_t.c.id == attempt_id)).first()
        return _attempt(row) if row is not None else None

    def in_states(self, states) -> list[PlaceAttempt]:
        """Every attempt in one of `states`, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(_t).where(_t.c.state.in_([s.value for s in states])).order_by(_t.c.id)).all()
        return [_attempt(row) for row in rows]

    def unsettled(self) -> list[PlaceAttempt]:
        """Attempts whose broker call is running, or whose outcome is unknown."""
        return self.in_states(UNSETTLED)

    def open_of(self, record_id: int) -> PlaceAttempt | None:
        """The request's attempt that is not final, newest first (unsettled before lapsed)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(_t).where(_t.c.record_id == record_id,
                                                 _t.c.state.in_([s.value for s in OPEN]))
                                .order_by(_t.c.id.desc())).all()
        attempts = [_attempt(row) for row in rows]
        return next((a for a in attempts if a.state in UNSETTLED), attempts[0] if attempts else None)

    def oldest_queued(self) -> PlaceAttempt | None:
        """The queued place that arrived first (the queue is sent in arrival order)."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_t).where(_t.c.state == AttemptState.QUEUED.value)
                               .order_by(_t.c.id).limit(1)).first()
        return _attempt(row) if row is not None else None

    def queue_position(self, attempt_id: int, conn: Connection | None = None) -> int:
        """1 for the next to be sent (in `conn`'s transaction when given)."""
        query = select(func.count()).select_from(_t).where(_t.c.state == AttemptState.QUEUED.value,
                                                           _t.c.id <= attempt_id)
        if conn is not None:
            return conn.execute(query).scalar_one()
        with self._engine.connect() as own:
            return own.execute(query).scalar_one()

    def queue_stats(self, now: datetime) -> QueueStats:
        with self._engine.connect() as conn:
            length, oldest = conn.execute(select(func.count(), func.min(_t.c.queued_at))
                                          .where(_t.c.state == AttemptState.QUEUED.value)).one()
            sent = conn.execute(select(func.count()).select_from(_t).where(
                _t.c.queued_at.is_not(None), _t.c.state == AttemptState.RECORDED.value,
                _t.c.updated_at >= now - timedelta(minutes=1))).scalar_one()
        return QueueStats(length, as_utc(oldest), sent)

    def of_request(self, request_id: str) -> PlaceAttempt | None:
        """The newest attempt of the request `request_id` (the one that tells where it stands)."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_t).where(_t.c.request_id == request_id)
                               .order_by(_t.c.id.desc()).limit(1)).first()
        return _attempt(row) if row is not None else None

    def cancelled_late_ids(self) -> set[str]:
        """The broker GTTs the late pass has cancelled for some attempt."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(_t.c.late_gtt_ids).where(_t.c.state == AttemptState.CANCELLED_LATE.value))
            return {gtt_id for (ids,) in rows for gtt_id in (ids or ())}

    def open_record_ids(self):
        """A subquery: the request records an open attempt points at (kept past their window)."""
        return select(_t.c.record_id).where(_t.c.state.in_([s.value for s in OPEN]))

    def purge(self, before: datetime) -> int:
        """Forget final attempts last moved before `before`."""
        with self._engine.begin() as conn:
            return conn.execute(delete(_t).where(_t.c.state.in_([s.value for s in FINAL]),
                                                 _t.c.updated_at < before)).rowcount
