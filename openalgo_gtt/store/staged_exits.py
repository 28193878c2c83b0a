"""The staged brackets' exits (`staged_exits`): the claim that makes an exit's placement happen
once, and what became of it. The only SQL of services/staged_bracket.py."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.model import TriggerKind, TriggerStatus
from openalgo_gtt.domain.records import RecordedTrigger, StagedExitRecord
from openalgo_gtt.store.gtt_orders import _trigger
from openalgo_gtt.store.models import GttLeg, GttOrder, StagedExit

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

    def claim(self, trigger_id: str, *, entry_gtt_id: str, entry_order_id: str | None, holder: str,
              now: datetime, state: str = PLACING, message: str | None = None) -> bool:
        """Insert the bracket's row; False when another process (or an earlier pass) has it.
        The primary key makes this the one place two claimants are told apart."""
        try:
            with self._sessions.begin() as session:
                session.execute(insert(StagedExit).values(
                    trigger_id=trigger_id, entry_gtt_id=entry_gtt_id, entry_order_id=entry_order_id, state=state,
                    exit_gtt_id=None, message=message, holder=holder, claimed_at=now, updated_at=now))
            return True
        except IntegrityError:
            return False

    def placed(self, trigger_id: str, exit_gtt_id: str, now: datetime, message: str | None = None) -> None:
        """The exit exists at the broker: remember its id, and record it as a leg of the bracket
        so no lookup ever claims it for another request."""
        with self._sessions.begin() as session:
            session.execute(update(StagedExit).where(StagedExit.trigger_id == trigger_id).values(
                state=PLACED, exit_gtt_id=exit_gtt_id, message=message, updated_at=now))
            if session.get(GttLeg, exit_gtt_id) is None:
                session.add(GttLeg(broker_id=exit_gtt_id, trigger_id=trigger_id, role=EXIT_ROLE, status="SCHEDULED",
                                   message=None, updated_at=now))

    def settle(self, trigger_id: str, state: str, message: str, now: datetime) -> None:
        with self._sessions.begin() as session:
            session.execute(update(StagedExit).where(StagedExit.trigger_id == trigger_id).values(
                state=state, message=message, updated_at=now))

    def release(self, trigger_id: str) -> None:
        """Give up a claim whose exit was certainly not placed, so the next pass tries again."""
        with self._sessions.begin() as session:
            session.execute(delete(StagedExit).where(StagedExit.trigger_id == trigger_id,
                                                     StagedExit.state == PLACING))
