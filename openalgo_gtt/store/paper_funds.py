"""What the sandbox's paper account has committed, read in one transaction (domain/paper.py
`account`): the live triggers the gateway recorded, the places still being sent, the open paper
orders and the positions.

Blocked margin is computed from these at read time, never kept as a running total: a trigger
leaves "active" (cancelled, expired, fired) or an attempt leaves SENDING/SETTLING (refused,
recorded, lapsed) in the very transaction that records it, so the margin it blocked is released
with it, exactly once. The place's own check runs in the unit of work that takes its trade
(store/unit_of_work.py `paper_account`), which also holds the day's trade counter row: two
places cannot both spend the same rupees.
"""
from __future__ import annotations

import json

from sqlalchemy import Connection, select

from openalgo_gtt.domain.model import ENTRY, TriggerKind, TriggerStatus
from openalgo_gtt.domain.paper import Commitment, PaperOrder, Position
from openalgo_gtt.domain.place_attempt import UNSETTLED
from openalgo_gtt.store import sandbox_paper
from openalgo_gtt.store.models import GttOrder, PlaceAttemptRow

_TRIGGERS = GttOrder.__table__
_ATTEMPTS = PlaceAttemptRow.__table__


def _entry_sent(broker_state: str | None) -> bool:
    """Whether the watcher saw an ENTRY rule leave the waiting states (its order was sent)."""
    if not broker_state:
        return False
    try:
        seen = json.loads(broker_state)
    except ValueError:
        return False
    return any(isinstance(rules, dict) and ENTRY.value in rules for rules in seen.values())


def commitments(conn: Connection, exclude_attempt: int | None = None) -> list[Commitment]:
    found = []
    query = (select(_TRIGGERS.c.trigger_id, _TRIGGERS.c.trigger_type, _TRIGGERS.c.product, _TRIGGERS.c.exchange,
                    _TRIGGERS.c.symbol, _TRIGGERS.c.legs, _TRIGGERS.c.broker_state)
             .where(_TRIGGERS.c.status == TriggerStatus.ACTIVE.value))
    for row in conn.execute(query):
        if row.trigger_type == TriggerKind.BRACKET.value and _entry_sent(row.broker_state):
            continue  # its entry became an order: that order or its position holds the margin now
        found.append(Commitment(row.trigger_type, row.product, row.exchange, row.symbol, tuple(row.legs or ()),
                                row.trigger_id))
    query = select(_ATTEMPTS.c.id, _ATTEMPTS.c.plan).where(_ATTEMPTS.c.state.in_([s.value for s in UNSETTLED]))
    for row in conn.execute(query):
        order = (row.plan or {}).get("order") or {}
        if row.id == exclude_attempt or not order:
            continue
        found.append(Commitment(order.get("trigger_type", "single"), order.get("product", ""),
                                order.get("exchange", ""), order.get("symbol", ""), tuple(order.get("legs") or ())))
    return found


def paper_inputs(conn: Connection, exclude_attempt: int | None = None
                 ) -> tuple[list[Commitment], list[Position], list[PaperOrder]]:
    return (commitments(conn, exclude_attempt), sandbox_paper.all_positions(conn), sandbox_paper.open_orders(conn))
