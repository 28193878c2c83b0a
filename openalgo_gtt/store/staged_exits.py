"""The staged brackets' exits (`staged_exits`): what became of each bracket's exit. The exit is
placed as a place attempt (services/staged_bracket.py, services/attempts.py), so placing it once
is the attempt's business; a row here is written when the outcome is final, in the unit of work
of the attempt's move (placed, failed) or on its own (refused: the entry's order did not fill)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.model import TriggerKind, TriggerStatus
from openalgo_gtt.domain.records import RecordedTrigger, StagedExitRecord
from openalgo_gtt.store.gtt_orders import _trigger
from openalgo_gtt.store.models import GttLeg, GttOrder, StagedExit

# `placing` was a claim written before the exit was sent, by versions before the attempts
# (migration 0014); such a row left by an upgrade is settled by a lookup (staged_bracket.py).
PLACING, PLACED, REFUSED, FAILED = "placing", "placed", "refused", "failed"
FINAL = (PLACED, REFUSED, FAILED)
EXIT_ROLE = "exit"  # the exit's gtt_legs row: the gateway knows the GTT, and whose it is


def _record(row: StagedExit | None) -> StagedExitRecord | None:
    if row is None:
        return None
    return StagedExitRecord(row.trigger_id, row.entry_gtt_id, row.entry_order_id, row.state, row.exit_gtt_id,
                            row.message, row.holder, as_utc(row.claimed_at), as_utc(row.updated_at))


class StagedExits:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def pending_brackets(self) -> list[RecordedTrigger]:
        """Brackets whose exit is not settled yet: still active, or fired (the watcher marks a
        fired entry triggered) with no placed, refused or failed exit."""
        settled = select(StagedExit.trigger_id).where(StagedExit.state.in_(FINAL))
        query = (select(GttOrder)
                 .where(GttOrder.trigger_type == TriggerKind.BRACKET,
                        GttOrder.status.in_((TriggerStatus.ACTIVE, TriggerStatus.TRIGGERED)),
                        GttOrder.trigger_id.not_in(settled))
                 .order_by(GttOrder.placed_at))
        with self._sessions() as session:
            return [_trigger(row) for row in session.scalars(query).all()]

    def get(self, trigger_id: str) -> StagedExitRecord | None:
        with self._sessions() as session:
            return _record(session.get(StagedExit, trigger_id))

    def settled(self, conn: Connection, trigger_id: str, *, state: str, entry_gtt_id: str,
                entry_order_id: str | None, holder: str, now: datetime, exit_gtt_id: str | None = None,
                message: str | None = None) -> None:
        """The exit's final outcome, in the caller's transaction; a placed exit is also recorded
        as a leg of the bracket, so no lookup ever claims it for another request."""
        conn.execute(delete(StagedExit).where(StagedExit.trigger_id == trigger_id, StagedExit.state == PLACING))
        conn.execute(insert(StagedExit).values(
            trigger_id=trigger_id, entry_gtt_id=entry_gtt_id, entry_order_id=entry_order_id, state=state,
            exit_gtt_id=exit_gtt_id, message=message, holder=holder, claimed_at=now, updated_at=now))
        if exit_gtt_id is not None:
            conn.execute(insert(GttLeg).values(broker_id=exit_gtt_id, trigger_id=trigger_id, role=EXIT_ROLE,
                                               status="SCHEDULED", message=None, updated_at=now))

    def refused(self, trigger_id: str, *, entry_gtt_id: str, entry_order_id: str | None, holder: str,
                now: datetime, message: str) -> bool:
        """No exit: the entry's order did not fill. False when another process wrote it first."""
        try:
            with self._sessions.begin() as session:
                self.settled(session.connection(), trigger_id, state=REFUSED, entry_gtt_id=entry_gtt_id,
                             entry_order_id=entry_order_id, holder=holder, now=now, message=message)
            return True
        except IntegrityError:
            return False

    def forget_legacy_claim(self, trigger_id: str) -> None:
        """Drop a `placing` claim of an earlier version whose exit is certainly not at the broker."""
        with self._sessions.begin() as session:
            session.execute(delete(StagedExit).where(StagedExit.trigger_id == trigger_id,
                                                     StagedExit.state == PLACING))
