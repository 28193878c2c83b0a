"""The fired legs' orders and their fills (`order_fills`, domain/fill.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, select

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.fill import LegFill, next_check
from openalgo_gtt.domain.model import OrderFill
from openalgo_gtt.store.engine import dialect_insert
from openalgo_gtt.store.models import OrderFillRow

_TABLE = OrderFillRow.__table__
_KEPT = ("trigger_id", "order_id", "action", "quantity", "status", "filled_quantity", "average_price", "message", "final", "checks",
         "checked_at")


def _leg_fill(row) -> LegFill:
    return LegFill(row.broker_id, row.leg, row.trigger_id, row.order_id, row.action, row.quantity,
                   OrderFill(row.status, row.filled_quantity, row.average_price, row.message),
                   row.checks, as_utc(row.checked_at), as_utc(row.fired_at))


class OrderFills:
    def __init__(self, engine: Engine):
        self._engine = engine
        insert = dialect_insert(engine)(_TABLE)
        # Built once: a later look-up overwrites what the row knew, its fire time stays.
        self._save = insert.on_conflict_do_update(index_elements=["broker_id", "leg"],
                                                  set_={name: insert.excluded[name] for name in _KEPT})

    def save(self, conn: Connection, leg: LegFill) -> None:
        fill = leg.fill
        conn.execute(self._save, {
            "broker_id": leg.broker_id, "leg": leg.leg, "trigger_id": leg.trigger_id, "order_id": leg.order_id,
            "action": leg.action, "quantity": leg.quantity, "status": fill.status, "filled_quantity": fill.filled_quantity, "average_price": fill.average_price,
            "message": fill.message, "final": fill.final, "checks": leg.checks, "fired_at": leg.fired_at,
            "checked_at": leg.checked_at})

    def of_triggers(self, trigger_ids: list[str]) -> dict[str, list[LegFill]]:
        """Every followed leg of these triggers, by trigger id."""
        found: dict[str, list[LegFill]] = {}
        if not trigger_ids:
            return found
        with self._engine.connect() as conn:
            for row in conn.execute(select(_TABLE).where(_TABLE.c.trigger_id.in_(list(trigger_ids)))):
                found.setdefault(row.trigger_id, []).append(_leg_fill(row))
        return found

    def due(self, now: datetime, limit: int) -> list[LegFill]:
        """Unfinished legs whose order is due another look-up (domain/fill.py `next_check`), the
        longest unchecked first, at most `limit`."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(_TABLE).where(_TABLE.c.final.is_(False))
                                .order_by(_TABLE.c.checked_at).limit(limit * 4)).all()
        legs = [_leg_fill(row) for row in rows]
        return [leg for leg in legs if (when := next_check(leg)) is not None and when <= now][:limit]
