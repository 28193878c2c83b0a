"""The daily trade limit: successful places per IST day, counted atomically in SQL.

One upsert statement reserves a trade before the broker is called, so however many threads,
processes or hosts place at once, no more than the limit reach the broker. A place that fails
for certain gives its reservation back; `force` bypasses the limit and still counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openalgo_gtt.domain.clock import ist_today
from openalgo_gtt.store.models import TradeCounter


@dataclass(frozen=True)
class Reservation:
    day: date
    count: int  # today's count including this trade


class TradeLimitReached(Exception):
    def __init__(self, count: int, limit: int):
        super().__init__(f"Daily trade limit reached ({count} of {limit} today); send force=true to override")
        self.count = count
        self.limit = limit


class DailyTradeLimit:
    def __init__(self, engine: Engine, limit: int, today: Callable[[], date] = ist_today):
        self._engine = engine
        self.limit = limit
        self._today = today
        insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        table = TradeCounter.__table__
        # Built once: the two forms of "count one more today", within the limit or forced.
        self._take_one, self._take_one_forced = (
            insert(table).on_conflict_do_update(
                index_elements=[table.c.day], set_={"count": table.c.count + 1},
                where=None if forced else table.c.count < bindparam("limit", callable_=lambda: self.limit),
            ).returning(table.c.count)
            for forced in (False, True)
        )

    def reserve(self, force: bool = False, also: Callable[[Connection, date], None] | None = None) -> Reservation:
        """Count one trade now, or raise TradeLimitReached when today's limit is used up. `also`
        runs first, in the same transaction (the caller's record of what it reserves for, which
        may itself refuse by raising), so a crash can never leave a reservation nobody knows
        about, and a refusal from either side leaves neither."""
        day = self._today()
        statement = self._take_one_forced if force else self._take_one
        try:
            with self._engine.begin() as conn:
                if also is not None:
                    also(conn, day)
                count = conn.execute(statement, {"day": day, "count": 1}).scalar()
                if count is None:
                    raise TradeLimitReached(self.limit, self.limit)  # rolls back what `also` wrote
        except TradeLimitReached:
            raise TradeLimitReached(self.today_count(), self.limit) from None
        return Reservation(day, count)

    def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose place certainly did not happen."""
        with self._engine.begin() as conn:
            conn.execute(
                update(TradeCounter)
                .where(TradeCounter.day == reservation.day, TradeCounter.count > 0)
                .values(count=TradeCounter.count - 1)
            )

    def today_count(self) -> int:
        with self._engine.connect() as conn:
            return conn.execute(select(TradeCounter.count).where(TradeCounter.day == self._today())).scalar() or 0
