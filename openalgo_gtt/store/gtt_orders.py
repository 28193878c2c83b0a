"""The GTTs this gateway placed: the few queries the GTT use cases need."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.clock import utcnow
from openalgo_gtt.store.models import GttOrder

ACTIVE = "active"
CANCELLED = "cancelled"


class GttOrders:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def add(self, order: GttOrder) -> GttOrder:
        with self._sessions.begin() as session:
            session.add(order)
        return order

    def get(self, trigger_id: str) -> GttOrder | None:
        with self._sessions() as session:
            return session.scalar(select(GttOrder).where(GttOrder.trigger_id == trigger_id))

    def by_trigger_ids(self, trigger_ids: list[str]) -> dict[str, GttOrder]:
        if not trigger_ids:
            return {}
        with self._sessions() as session:
            rows = session.scalars(select(GttOrder).where(GttOrder.trigger_id.in_(trigger_ids))).all()
        return {row.trigger_id: row for row in rows}

    def list(self, status: str | None = None) -> list[GttOrder]:
        query = select(GttOrder).order_by(GttOrder.placed_at.desc(), GttOrder.id.desc())
        if status:
            query = query.where(GttOrder.status == status)
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
                   cancelled_at: datetime | None = None) -> None:
        values = {"status": status, "status_message": message}
        if cancelled_at is not None:
            values["cancelled_at"] = cancelled_at
        with self._sessions.begin() as session:
            session.execute(update(GttOrder).where(GttOrder.trigger_id == trigger_id).values(**values))
