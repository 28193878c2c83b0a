"""The daily trade counter: successful places per IST day, counted atomically in SQL.

One upsert statement takes a trade, within the limit or forced, so however many threads,
processes or hosts place at once, no more than the limit are ever taken.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, Engine, bindparam, select, update

from openalgo_gtt.store.engine import dialect_insert
from openalgo_gtt.store.models import TradeCounter

_table = TradeCounter.__table__
_COUNT = select(TradeCounter.count).where(TradeCounter.day == bindparam("day"))
_GIVE_BACK = (update(TradeCounter).where(TradeCounter.day == bindparam("the_day"), TradeCounter.count > 0)
              .values(count=TradeCounter.count - 1))


class TradeCounters:
    def __init__(self, engine: Engine):
        self._engine = engine
        insert = dialect_insert(engine)
        # Built once: the two forms of "count one more today", within the limit or forced.
        self._take_within = (insert(_table).on_conflict_do_update(
            index_elements=[_table.c.day], set_={"count": _table.c.count + 1},
            where=_table.c.count < bindparam("limit")).returning(_table.c.count))
        self._take_forced = (insert(_table).on_conflict_do_update(
            index_elements=[_table.c.day], set_={"count": _table.c.count + 1}).returning(_table.c.count))
        # Takes the day's row (a write that changes nothing) without counting a trade: whoever
        # else writes it (a place's `take`) waits for the caller's transaction to end.
        self._hold = insert(_table).on_conflict_do_update(index_elements=[_table.c.day],
                                                          set_={"count": _table.c.count})

    def take(self, conn: Connection, day: date, limit: int | None) -> int | None:
        """Count one more trade on `day` in the caller's transaction: today's count including it,
        or None when `limit` is already used up (None for `limit` means forced)."""
        if limit is None:
            return conn.execute(self._take_forced, {"day": day, "count": 1}).scalar()
        if limit <= 0:
            return None
        return conn.execute(self._take_within, {"day": day, "count": 1, "limit": limit}).scalar()

    def hold(self, conn: Connection, day: date) -> None:
        """Take the places' turn for `day` in the caller's transaction, counting nothing."""
        conn.execute(self._hold, {"day": day, "count": 0})

    def give_back(self, day: date, conn: Connection | None = None) -> None:
        """One trade fewer on `day`, in `conn` when given."""
        if conn is not None:
            conn.execute(_GIVE_BACK, {"the_day": day})
            return
        with self._engine.begin() as own:
            own.execute(_GIVE_BACK, {"the_day": day})

    def count(self, day: date) -> int:
        with self._engine.connect() as conn:
            return conn.execute(_COUNT, {"day": day}).scalar() or 0
