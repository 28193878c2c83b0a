"""Request records: the store behind exactly-once writes (see models.RequestRecord)."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import as_utc, utcnow
from openalgo_gtt.store.engine import dialect_insert
from openalgo_gtt.store.models import LapsedPlace, RequestRecord

PENDING = "pending"
DONE = "done"
FAULT = "fault"


@dataclass(frozen=True)
class Snapshot:
    id: int
    endpoint: str
    request_hash: str | None
    state: str
    holder: str
    response_status: int | None
    response_body: object
    plan: object
    reserved_day: date | None
    attempt_started_at: datetime | None
    updated_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, row: RequestRecord) -> "Snapshot":
        return cls(row.id, row.endpoint, row.request_hash, row.state, row.holder, row.response_status, row.response_body, row.plan,
                   row.reserved_day, as_utc(row.attempt_started_at), as_utc(row.updated_at), as_utc(row.expires_at))


def holder_alive(holder: str) -> bool | None:
    """Whether the process named by a holder id (host:pid:token) still runs: True or False when it
    is on this host, None (unknown) elsewhere."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RequestRecords:
    def __init__(self, engine: Engine, sessions: sessionmaker[Session], holder: str):
        self._engine = engine
        self._sessions = sessions
        self.holder = holder
        insert = dialect_insert(engine)
        table = RequestRecord.__table__
        # Built once, with the values given at execution: compiled once per shape and cached.
        self._claim = (insert(table).on_conflict_do_nothing(index_elements=["api_key_name", "idem_key"])
                       .returning(table.c.id))
        self._close = update(table).where(table.c.id == bindparam("record_id"))

    def _insert_claim(self, conn: Connection, api_key_name: str, idem_key: str, endpoint: str, request_hash: str,
                      ttl: timedelta, now: datetime, **intent) -> int | None:
        """INSERT the record unless the key is taken; its id, or None when another holds it."""
        return conn.execute(self._claim, {
            "api_key_name": api_key_name, "idem_key": idem_key, "endpoint": endpoint,
            "request_hash": request_hash, "state": PENDING,
            "holder": self.holder, "created_at": now, "updated_at": now, "expires_at": now + ttl, **intent,
        }).scalar()

    def claim(self, api_key_name: str, idem_key: str, endpoint: str, request_hash: str,
              ttl: timedelta) -> tuple[Snapshot, bool]:
        """The record for this key, and whether this call created it (and so owns the work)."""
        for _ in range(3):
            now = utcnow()
            with self._engine.begin() as conn:
                created = self._insert_claim(conn, api_key_name, idem_key, endpoint, request_hash, ttl, now)
            if created is not None:  # ours: no need to read back what was just written
                return Snapshot(created, endpoint, request_hash, PENDING, self.holder, None, None, None, None, None,
                                now, now + ttl), True
            snapshot = self.existing(api_key_name, idem_key)
            if snapshot is not None:
                return snapshot, False
        raise RuntimeError("could not claim a request record")  # pragma: no cover - three races in a row

    def claim_with_intent(self, conn: Connection, api_key_name: str, idem_key: str, endpoint: str,
                          request_hash: str, ttl: timedelta, plan: object, reserved_day: date | None,
                          started_at: datetime) -> int | None:
        """Claim the key and write the intent in one statement, in the caller's transaction (the
        one that reserves the trade). The new record's id, or None when the key is taken."""
        return self._insert_claim(conn, api_key_name, idem_key, endpoint, request_hash, ttl, utcnow(), plan=plan,
                                  reserved_day=reserved_day, attempt_started_at=started_at)

    def existing(self, api_key_name: str, idem_key: str) -> Snapshot | None:
        """The live record holding a key; None when there is none (an expired, settled one is
        deleted on the way, so the key can be claimed afresh)."""
        snapshot = self._by_key(api_key_name, idem_key)
        if snapshot is None:
            return None
        now = utcnow()
        if snapshot.expires_at >= now or snapshot.reserved_day is not None:
            return snapshot  # live, or expired with a trade still unsettled: reconcile first
        with self._engine.begin() as conn:
            conn.execute(delete(RequestRecord).where(RequestRecord.id == snapshot.id, RequestRecord.expires_at < now))
        return None

    def _by_key(self, api_key_name: str, idem_key: str) -> Snapshot | None:
        with self._sessions() as session:
            row = session.scalar(select(RequestRecord).where(RequestRecord.api_key_name == api_key_name,
                                                             RequestRecord.idem_key == idem_key))
            return Snapshot.of(row) if row is not None else None

    def get(self, record_id: int) -> Snapshot | None:
        with self._sessions() as session:
            row = session.get(RequestRecord, record_id)
            return Snapshot.of(row) if row is not None else None

    def take_over(self, snapshot: Snapshot) -> bool:
        """Become the one handling a record left in fault, or pending by a dead process. Only one
        contender wins (the update is conditional on the state it saw)."""
        now = utcnow()
        with self._engine.begin() as conn:
            won = conn.execute(
                update(RequestRecord)
                .where(RequestRecord.id == snapshot.id, RequestRecord.state == snapshot.state,
                       RequestRecord.holder == snapshot.holder, RequestRecord.updated_at == snapshot.updated_at)
                .values(state=PENDING, holder=self.holder, updated_at=now)
            ).rowcount
        return bool(won)

    def save_intent(self, record_id: int, plan: object, reserved_day: date | None, started_at: datetime,
                    conn: Connection) -> None:
        """Written before the broker is called, in the transaction that reserves the trade: what
        is about to be sent and the trade reserved for it."""
        conn.execute(update(RequestRecord).where(RequestRecord.id == record_id)
                     .values(plan=plan, reserved_day=reserved_day, attempt_started_at=started_at,
                             updated_at=utcnow()))

    def drop_intent(self, record_id: int, conn: Connection) -> None:
        """Forget the intent and its reservation (the place lapsed), leaving the state alone:
        whoever holds the record goes on with it."""
        conn.execute(update(RequestRecord).where(RequestRecord.id == record_id)
                     .values(plan=None, reserved_day=None, updated_at=utcnow()))

    def answer_lapsed(self, record_id: int, body: object, conn: Connection) -> bool:
        """Give a lapsed place's record the answer of its GTT found late, unless another attempt
        has taken the record since (False): a fault without an intent is the only state in which
        a late GTT is the request's one GTT."""
        return bool(conn.execute(
            update(RequestRecord).where(RequestRecord.id == record_id, RequestRecord.state == FAULT,
                                        RequestRecord.plan.is_(None))
            .values(state=DONE, response_status=200, response_body=body, updated_at=utcnow())).rowcount)

    def finish(self, record_id: int, state: str, status: int | None, body: object,
               keep_reservation: bool, forget_plan: bool = False, conn: Connection | None = None) -> None:
        """Close a record, in `conn` when given (the transaction that records the GTT). A kept
        reservation (an outcome still unknown) keeps the plan too, so a retry or the watcher can
        look for it at the broker."""
        values = {"record_id": record_id, "state": state, "response_status": status, "response_body": body,
                  "updated_at": utcnow()}
        if not keep_reservation:
            values["reserved_day"] = None
        if forget_plan:
            values["plan"] = None
        if conn is not None:
            conn.execute(self._close, values)
            return
        with self._engine.begin() as own:
            own.execute(self._close, values)

    def with_intent(self) -> list[Snapshot]:
        """Every open record holding an intent: places running, or whose outcome is unknown."""
        with self._sessions() as session:
            rows = session.scalars(select(RequestRecord).where(RequestRecord.state.in_((PENDING, FAULT)),
                                                               RequestRecord.plan.is_not(None))).all()
            return [Snapshot.of(row) for row in rows]

    def unsettled(self, stale_after: timedelta) -> list[Snapshot]:
        """Records whose outcome is still open: faults, and pending ones whose process died or
        that have not moved for `stale_after`."""
        cutoff = utcnow() - stale_after
        return [s for s in self.with_intent()
                if s.state == FAULT or s.updated_at < cutoff or holder_alive(s.holder) is False]

    def purge_expired(self) -> int:
        """Delete answered records past their window, except those an open lapsed place points
        at: a very late GTT is judged by how its request was last answered (services/late_gtts.py),
        for longer than a duplicate alert's window."""
        now = utcnow()
        still_open = select(LapsedPlace.record_id).where(LapsedPlace.resolved_at.is_(None))
        with self._engine.begin() as conn:
            return conn.execute(delete(RequestRecord).where(RequestRecord.expires_at < now, RequestRecord.state == DONE,
                                                            RequestRecord.id.not_in(still_open))).rowcount
