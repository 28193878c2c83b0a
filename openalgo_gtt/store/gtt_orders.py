"""The GTTs this gateway placed, and the broker GTTs (legs) behind each: the few queries the
GTT use cases and the watcher need."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.clock import utcnow
from openalgo_gtt.store.models import GttLeg, GttOrder

ACTIVE = "active"
CANCELLED = "cancelled"
TWO_LEG = "two-leg"


class GttOrders:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def add(self, order: GttOrder, legs: list[tuple[str, str, str]]) -> GttOrder:
        """Record a trigger and its legs, given as (broker_id, role, broker status)."""
        now = utcnow()
        with self._sessions.begin() as session:
            session.add(order)
            session.add_all(GttLeg(broker_id=broker_id, trigger_id=order.trigger_id, role=role,
                                   status=status, updated_at=now) for broker_id, role, status in legs)
        return order

    def get(self, trigger_id: str) -> GttOrder | None:
        with self._sessions() as session:
            return session.scalar(select(GttOrder).where(GttOrder.trigger_id == trigger_id))

    def by_request_id(self, request_id: str) -> GttOrder | None:
        with self._sessions() as session:
            return session.scalar(select(GttOrder).where(GttOrder.request_id == request_id))

    def by_trigger_ids(self, trigger_ids: list[str]) -> dict[str, GttOrder]:
        if not trigger_ids:
            return {}
        with self._sessions() as session:
            rows = session.scalars(select(GttOrder).where(GttOrder.trigger_id.in_(trigger_ids))).all()
        return {row.trigger_id: row for row in rows}

    def legs_by_broker_id(self, broker_ids: list[str]) -> dict[str, GttLeg]:
        if not broker_ids:
            return {}
        with self._sessions() as session:
            rows = session.scalars(select(GttLeg).where(GttLeg.broker_id.in_(broker_ids))).all()
        return {row.broker_id: row for row in rows}

    def list(self, status: str | None = None, trigger_type: str | None = None) -> list[GttOrder]:
        query = select(GttOrder).order_by(GttOrder.placed_at.desc(), GttOrder.id.desc())
        if status:
            query = query.where(GttOrder.status == status)
        if trigger_type:
            query = query.where(GttOrder.trigger_type == trigger_type)
        with self._sessions() as session:
            return list(session.scalars(query).all())

    def replaced(self, trigger_id: str, *, quantity: int, legs: list, request_id: str) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(GttOrder)
                .where(GttOrder.trigger_id == trigger_id)
                .values(quantity=quantity, legs=legs, modified_at=utcnow(), request_id=request_id)
            )

    def set_status(self, trigger_id: str, status: str, message: str | None = None,
                   cancelled_at: datetime | None = None) -> bool:
        """Move a trigger to `status`; returns whether anything changed."""
        values = {"status": status, "status_message": message}
        if cancelled_at is not None:
            values["cancelled_at"] = cancelled_at
        with self._sessions.begin() as session:
            changed = session.execute(
                update(GttOrder)
                .where(GttOrder.trigger_id == trigger_id,
                       (GttOrder.status != status) | (GttOrder.status_message.is_distinct_from(message)))
                .values(**values)
            ).rowcount
        return bool(changed)

    def set_leg_status(self, broker_id: str, status: str, message: str | None = None) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(GttLeg)
                .where(GttLeg.broker_id == broker_id,
                       (GttLeg.status != status) | (GttLeg.message.is_distinct_from(message)))
                .values(status=status, message=message, updated_at=utcnow())
            )
