"""Places whose outcome stayed unknown for the whole settling window (see services/settling.py).

A row is written in the transaction that gives the place's trade back, and resolved when a very
late GTT matching it is counted or cancelled, or when nothing turned up within the horizon."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select, update

from openalgo_gtt.domain.clock import as_utc, utcnow
from openalgo_gtt.store.models import LapsedPlace


@dataclass(frozen=True)
class Lapsed:
    id: int
    record_id: int
    plan: dict
    attempt_started_at: datetime
    lapsed_at: datetime


class LapsedPlaces:
    def __init__(self, engine: Engine):
        self._engine = engine

    def add(self, conn: Connection, record_id: int, plan: dict, attempt_started_at: datetime) -> None:
        conn.execute(insert(LapsedPlace).values(record_id=record_id, plan=plan,
                                                attempt_started_at=attempt_started_at, lapsed_at=utcnow()))

    def open(self) -> list[Lapsed]:
        """Every lapsed place not yet resolved, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(LapsedPlace).where(LapsedPlace.resolved_at.is_(None))
                                .order_by(LapsedPlace.id)).all()
        return [Lapsed(r.id, r.record_id, r.plan, as_utc(r.attempt_started_at), as_utc(r.lapsed_at)) for r in rows]

    def resolve(self, lapsed_id: int, resolution: str, conn: Connection | None = None) -> bool:
        """Mark one resolved; False when another process resolved it first."""
        statement = (update(LapsedPlace).where(LapsedPlace.id == lapsed_id, LapsedPlace.resolved_at.is_(None))
                     .values(resolved_at=utcnow(), resolution=resolution[:255]))
        if conn is not None:
            return bool(conn.execute(statement).rowcount)
        with self._engine.begin() as own:
            return bool(own.execute(statement).rowcount)

    def expire(self, older_than: timedelta) -> int:
        """Resolve, as nothing found, those lapsed longer ago than `older_than`."""
        with self._engine.begin() as conn:
            return conn.execute(update(LapsedPlace).where(LapsedPlace.resolved_at.is_(None),
                                                          LapsedPlace.lapsed_at < utcnow() - older_than)
                                .values(resolved_at=utcnow(), resolution="nothing turned up at the broker")).rowcount
