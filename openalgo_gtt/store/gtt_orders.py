"""The GTTs this gateway placed, and the broker GTTs (legs) behind each: the few queries the
GTT use cases and the watcher need. Reads return `domain.records` dataclasses."""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, case, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import as_utc, utcnow
from openalgo_gtt.domain.model import TriggerKind, TriggerStatus
from openalgo_gtt.domain.records import RecordedLeg, RecordedTrigger
from openalgo_gtt.domain.watch import BrokerState, Change, Watched
from openalgo_gtt.store.models import GttLeg, GttOrder


# The order book reads these on every fetch: built once, as plain column selects (no ORM objects
# to load, no JSON columns to decode).
_BOOK_LEGS = select(GttLeg.broker_id, GttLeg.trigger_id, GttLeg.role).where(
    GttLeg.broker_id.in_(bindparam("ids", expanding=True)))
_BOOK_TRIGGERS = select(GttOrder.trigger_id, GttOrder.trigger_type, GttOrder.product, GttOrder.placed_at,
                        GttOrder.modified_at, GttOrder.cancelled_at, GttOrder.state_changed_at, GttOrder.strategy,
                        GttOrder.expires_at, GttOrder.status, GttOrder.status_message).where(
    GttOrder.trigger_id.in_(bindparam("ids", expanding=True)))


# The watcher reads every live trigger on each poll: plain columns, no ORM objects, and no JSON
# to decode but an OCO's (a single or bracket trigger's one broker GTT id is its trigger id).
_WATCHED = select(GttOrder.trigger_id, GttOrder.trigger_type, GttOrder.symbol, GttOrder.exchange, GttOrder.action,
                  GttOrder.quantity, GttOrder.status, GttOrder.status_message, GttOrder.broker_state)
_WATCHED_PAIRS = select(GttOrder.trigger_id, GttOrder.broker_ids, GttOrder.legs).where(
    GttOrder.trigger_id.in_(bindparam("ids", expanding=True)))
_WATCHED_LEGS = select(GttLeg.broker_id, GttLeg.status, GttLeg.message).where(
    GttLeg.trigger_id.in_(bindparam("ids", expanding=True)))


def _state_text(state: BrokerState) -> str | None:
    """The canonical text of a broker state (equal states, equal texts); None when empty."""
    return json.dumps(state, sort_keys=True, separators=(",", ":")) if state else None


def _trigger(row: GttOrder | None) -> RecordedTrigger | None:
    if row is None:
        return None
    return RecordedTrigger(
        trigger_id=row.trigger_id, broker_ids=list(row.broker_ids), instrument_key=row.instrument_key,
        symbol=row.symbol, exchange=row.exchange, trigger_type=row.trigger_type, action=row.action,
        product=row.product, quantity=row.quantity, legs=row.legs, strategy=row.strategy, status=row.status,
        status_message=row.status_message, placed_at=as_utc(row.placed_at), modified_at=as_utc(row.modified_at),
        cancelled_at=as_utc(row.cancelled_at), request_id=row.request_id, api_key_name=row.api_key_name,
        state_changed_at=as_utc(row.state_changed_at), expires_at=as_utc(row.expires_at))


class GttOrders:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions
        self._engine = sessions.kw["bind"]
        self._insert_order = insert(GttOrder.__table__)
        self._insert_leg = insert(GttLeg.__table__)

    def add(self, conn: Connection, order: dict, legs: list[tuple[str, str, str]]) -> None:
        """Record a trigger (a gtt_orders row's values) and its legs, given as (broker_id, role,
        broker status), in the caller's transaction.

        Only a two-leg trigger gets gtt_legs rows: its broker GTTs need mapping back to it (two
        on Upstox; one native OCO on Kite, whose id is not the trigger id either, role "two-leg").
        A single or bracket trigger is one broker GTT whose id is the trigger id, so a row for it
        would only repeat the order row (and cost every place a statement)."""
        if isinstance(order.get("expires_at"), str):  # as a place attempt's JSON carries it
            order = {**order, "expires_at": datetime.fromisoformat(order["expires_at"])}
        conn.execute(self._insert_order, order)
        if order["trigger_type"] == TriggerKind.TWO_LEG:
            # Stamped with the place's own time: a leg changed later than that is a change the
            # book shows (`updated_at`); one never changed shows none.
            now = order.get("placed_at") or utcnow()
            conn.execute(self._insert_leg, [
                {"broker_id": broker_id, "trigger_id": order["trigger_id"], "role": role or TriggerKind.TWO_LEG,
                 "status": status, "updated_at": now} for broker_id, role, status in legs])

    def get(self, trigger_id: str) -> RecordedTrigger | None:
        with self._sessions() as session:
            return _trigger(session.scalar(select(GttOrder).where(GttOrder.trigger_id == trigger_id)))

    def by_request_id(self, request_id: str) -> RecordedTrigger | None:
        with self._sessions() as session:
            return _trigger(session.scalar(select(GttOrder).where(GttOrder.request_id == request_id)))

    def by_trigger_ids(self, trigger_ids: list[str]) -> dict[str, RecordedTrigger]:
        if not trigger_ids:
            return {}
        with self._sessions() as session:
            rows = session.scalars(select(GttOrder).where(GttOrder.trigger_id.in_(trigger_ids))).all()
        return {row.trigger_id: _trigger(row) for row in rows}

    def known_broker_ids(self, broker_ids: list[str]) -> set[str]:
        """Which of these broker GTT ids the gateway has recorded (as a trigger or an OCO leg)."""
        if not broker_ids:
            return set()
        with self._engine.connect() as conn:
            triggers = conn.scalars(select(GttOrder.trigger_id).where(GttOrder.trigger_id.in_(broker_ids))).all()
        return set(triggers) | set(self.legs_by_broker_id(broker_ids))

    def legs_by_broker_id(self, broker_ids: list[str]) -> dict[str, RecordedLeg]:
        if not broker_ids:
            return {}
        with self._sessions() as session:
            rows = session.scalars(select(GttLeg).where(GttLeg.broker_id.in_(broker_ids))).all()
        return {row.broker_id: RecordedLeg(row.broker_id, row.trigger_id, row.role, row.status, row.message,
                                           as_utc(row.updated_at)) for row in rows}

    def list(self, status: str | None = None, trigger_type: str | None = None) -> list[RecordedTrigger]:
        query = select(GttOrder).order_by(GttOrder.placed_at.desc(), GttOrder.id.desc())
        if status:
            query = query.where(GttOrder.status == status)
        if trigger_type:
            query = query.where(GttOrder.trigger_type == trigger_type)
        with self._sessions() as session:
            return [_trigger(row) for row in session.scalars(query).all()]

    def replaced(self, trigger_id: str, *, quantity: int, legs: list, request_id: str,
                 conn: Connection | None = None) -> None:
        """A modify's new quantity and legs (in the caller's transaction when `conn` is given)."""
        statement = (update(GttOrder).where(GttOrder.trigger_id == trigger_id)
                     .values(quantity=quantity, legs=legs, modified_at=utcnow(), request_id=request_id))
        self._write(statement, conn)

    def hold_legs(self, trigger_id: str, legs: list, conn: Connection | None = None) -> None:
        """Only the legs (what the trigger blocks on the sandbox): a modify's margin held before
        its broker call, or given back when that call fails (services/paper.py `check_modify`)."""
        self._write(update(GttOrder).where(GttOrder.trigger_id == trigger_id).values(legs=legs), conn)

    def set_status(self, trigger_id: str, status: str, message: str | None = None,
                   cancelled_at: datetime | None = None, conn: Connection | None = None) -> bool:
        """Move a trigger to `status` (in the caller's transaction when `conn` is given);
        returns whether anything changed."""
        values = {"status": status, "status_message": message,
                  "state_changed_at": case((GttOrder.status != status, utcnow()), else_=GttOrder.state_changed_at)}
        if cancelled_at is not None:
            values["cancelled_at"] = cancelled_at
        statement = (update(GttOrder)
                     .where(GttOrder.trigger_id == trigger_id,
                            (GttOrder.status != status) | (GttOrder.status_message.is_distinct_from(message)))
                     .values(**values))
        return bool(self._write(statement, conn))

    def _write(self, statement, conn: Connection | None) -> int:
        if conn is not None:
            return conn.execute(statement).rowcount
        with self._engine.begin() as own:
            return own.execute(statement).rowcount

    def book_records(self, broker_ids: list[str]) -> tuple[dict[str, tuple[str, str]], dict[str, Row]]:
        """What the order book needs to know of these listed broker GTTs, in one connection: the
        (trigger_id, role) of each recorded as a leg, and the trigger_id, trigger_type, product,
        placed_at, modified_at and cancelled_at of each that is its own trigger (a single or a bracket)."""
        if not broker_ids:
            return {}, {}
        with self._engine.connect() as conn:
            legs = {broker_id: (trigger_id, role)
                    for broker_id, trigger_id, role in conn.execute(_BOOK_LEGS, {"ids": broker_ids})}
            # A native OCO (one broker GTT, role two-leg) is its own entry, keyed by its broker id.
            native = {broker_id: trigger_id for broker_id, (trigger_id, role) in legs.items()
                      if role == TriggerKind.TWO_LEG}
            triggers = {row.trigger_id: row for row in conn.execute(
                _BOOK_TRIGGERS, {"ids": list(broker_ids) + list(native.values())})}
        for broker_id, trigger_id in native.items():
            if trigger_id in triggers:
                triggers[broker_id] = triggers.pop(trigger_id)
        return legs, triggers

    def due_to_expire(self, now: datetime) -> list[RecordedTrigger]:
        """Live triggers whose caller's expiry (expires_at) has come, soonest first."""
        query = (select(GttOrder).where(GttOrder.status == TriggerStatus.ACTIVE, GttOrder.expires_at <= now)
                 .order_by(GttOrder.expires_at))
        with self._sessions() as session:
            return [_trigger(row) for row in session.scalars(query).all()]

    def clear_expiry(self, trigger_id: str) -> None:
        """The caller's expiry no longer applies (a part fired first)."""
        self._write(update(GttOrder).where(GttOrder.trigger_id == trigger_id).values(expires_at=None), None)

    # -- the watcher: compare in memory, write only what changed --------------------------------

    def watched(self, trigger_ids: list[str] | None = None) -> list[Watched]:
        """Every live trigger (or those of `trigger_ids` that are live), as the watcher compares
        them: one statement, and two more when OCO pairs are live, whatever their number."""
        query = _WATCHED.where(GttOrder.status == TriggerStatus.ACTIVE)
        if trigger_ids is not None:
            query = query.where(GttOrder.trigger_id.in_(trigger_ids))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            pair_ids = [row.trigger_id for row in rows if row.trigger_type == TriggerKind.TWO_LEG]
            pairs, legs = {}, {}
            if pair_ids:
                pairs = {t: (list(ids), list(recorded or ())) for t, ids, recorded in
                         conn.execute(_WATCHED_PAIRS, {"ids": pair_ids})}
                legs = {b: (status, message) for b, status, message in conn.execute(_WATCHED_LEGS, {"ids": pair_ids})}
        watched = []
        for row in rows:
            broker_ids, recorded_legs = pairs.get(row.trigger_id, ([row.trigger_id], []))
            watched.append(Watched(
                row.trigger_id, row.trigger_type, broker_ids, row.symbol, row.exchange, row.action, row.quantity,
                recorded_legs, row.status, row.status_message,
                json.loads(row.broker_state) if row.broker_state else {},
                {b: legs[b] for b in broker_ids if b in legs}))
        return watched

    def record_change(self, conn: Connection, change: Change) -> bool:
        """Write one trigger's change in the caller's transaction, if its record still is what the
        change was computed from; False (nothing written) when another observer was first."""
        written = conn.execute(
            update(GttOrder)
            .where(GttOrder.trigger_id == change.trigger_id, GttOrder.status == change.was_status,
                   GttOrder.broker_state.is_not_distinct_from(_state_text(change.was_state)))
            .values(status=change.status, status_message=change.message, broker_state=_state_text(change.broker_state),
                    state_changed_at=utcnow())
        ).rowcount
        if not written:
            return False
        now = utcnow()
        for broker_id, status, message in change.leg_updates:
            conn.execute(update(GttLeg).where(GttLeg.broker_id == broker_id)
                         .values(status=status, message=message, updated_at=now))
        return True
