"""Request records: the store behind exactly-once writes (see models.RequestRecord)."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from openalgo_gtt.store.engine import dialect_insert
from openalgo_gtt.store.models import RequestRecord
from openalgo_gtt.store.place_attempts import PlaceAttempts

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
    updated_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, row: RequestRecord) -> "Snapshot":
        return cls(row.id, row.endpoint, row.request_hash, row.state, row.holder, row.response_status,
                   row.response_body, as_utc(row.updated_at), as_utc(row.expires_at))


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


def gone_quiet(record: Snapshot, now: datetime, stale_after: timedelta) -> bool:
    """Whether the process holding `record` has stopped (it died, or has not moved the record for
    `stale_after`): another may then take the record over."""
    return holder_alive(record.holder) is False or record.updated_at <= now - stale_after


class RequestRecords:
    def __init__(self, engine: Engine, sessions: sessionmaker[Session], holder: str, clock: Clock = SYSTEM_CLOCK):
        self._engine = engine
        self._sessions = sessions
        self.holder = holder
        self._clock = clock
        insert = dialect_insert(engine)
        table = RequestRecord.__table__
        # Built once, with the values given at execution: compiled once per shape and cached.
        self._claim = (insert(table).on_conflict_do_nothing(index_elements=["api_key_name", "idem_key"])
                       .returning(table.c.id))
        self._close = update(table).where(table.c.id == bindparam("record_id"))
        # The records an open place attempt points at: kept past their window (see purge_expired).
        self._open_attempts = PlaceAttempts(engine).open_record_ids()

    def claim_in(self, conn: Connection, api_key_name: str, idem_key: str, endpoint: str, request_hash: str,
                 ttl: timedelta) -> int | None:
        """INSERT the record unless the key is taken, in the caller's transaction: its id, or
        None when another holds it."""
        now = self._clock.now()
        return conn.execute(self._claim, {
            "api_key_name": api_key_name, "idem_key": idem_key, "endpoint": endpoint,
            "request_hash": request_hash, "state": PENDING,
            "holder": self.holder, "created_at": now, "updated_at": now, "expires_at": now + ttl,
        }).scalar()

    def claim(self, api_key_name: str, idem_key: str, endpoint: str, request_hash: str,
              ttl: timedelta) -> tuple[Snapshot, bool]:
        """The record for this key, and whether this call created it (and so owns the work)."""
        for _ in range(3):
            with self._engine.begin() as conn:
                now = self._clock.now()
                created = self.claim_in(conn, api_key_name, idem_key, endpoint, request_hash, ttl)
            if created is not None:  # ours: no need to read back what was just written
                return Snapshot(created, endpoint, request_hash, PENDING, self.holder, None, None, now, now + ttl), True
            snapshot = self.existing(api_key_name, idem_key)
            if snapshot is not None:
                return snapshot, False
        raise RuntimeError("could not claim a request record")  # pragma: no cover - three races in a row

    def existing(self, api_key_name: str, idem_key: str) -> Snapshot | None:
        """The live record holding a key; None when there is none (an expired, settled one is
        deleted on the way, so the key can be claimed afresh)."""
        snapshot = self._by_key(api_key_name, idem_key)
        if snapshot is None:
            return None
        now = self._clock.now()
        if snapshot.expires_at >= now:
            return snapshot
        with self._engine.begin() as conn:
            gone = conn.execute(delete(RequestRecord).where(
                RequestRecord.id == snapshot.id, RequestRecord.expires_at < now,
                RequestRecord.id.not_in(self._open_attempts))).rowcount
        return None if gone else snapshot  # expired with an attempt still open: reconcile first

    def _by_key(self, api_key_name: str, idem_key: str) -> Snapshot | None:
        with self._sessions() as session:
            row = session.scalar(select(RequestRecord).where(RequestRecord.api_key_name == api_key_name,
                                                             RequestRecord.idem_key == idem_key))
            return Snapshot.of(row) if row is not None else None

    def get(self, record_id: int, conn: Connection | None = None) -> Snapshot | None:
        if conn is not None:
            row = conn.execute(select(RequestRecord).where(RequestRecord.id == record_id)).first()
            return Snapshot.of(row) if row is not None else None
        with self._sessions() as session:
            row = session.get(RequestRecord, record_id)
            return Snapshot.of(row) if row is not None else None

    def take_over(self, snapshot: Snapshot) -> bool:
        """Become the one handling a record left in fault, or pending by a dead process. Only one
        contender wins (the update is conditional on the state it saw)."""
        with self._engine.begin() as conn:
            won = conn.execute(
                update(RequestRecord)
                .where(RequestRecord.id == snapshot.id, RequestRecord.state == snapshot.state,
                       RequestRecord.holder == snapshot.holder, RequestRecord.updated_at == snapshot.updated_at)
                .values(state=PENDING, holder=self.holder, updated_at=self._clock.now())
            ).rowcount
        return bool(won)

    def answer_if_open(self, record_id: int, body: object, conn: Connection,
                       abandoned: Snapshot | None = None) -> bool:
        """Give a request the answer of its GTT found late, unless it has been answered, or is
        held by a running attempt, since (False). `abandoned`: the record as read, left pending
        by a process that stopped; it is answered unless another has taken it over since."""
        still_open = RequestRecord.state == FAULT
        if abandoned is not None:
            still_open = or_(still_open, and_(RequestRecord.state == PENDING,
                                              RequestRecord.holder == abandoned.holder,
                                              RequestRecord.updated_at == abandoned.updated_at))
        return bool(conn.execute(
            update(RequestRecord).where(RequestRecord.id == record_id, still_open)
            .values(state=DONE, response_status=200, response_body=body, updated_at=self._clock.now())).rowcount)

    def fault_if_held_by(self, record_id: int, holder: str, quiet_since: datetime, conn: Connection) -> None:
        """A record left pending by `holder` (a process that stopped mid-place) opens to retries,
        unless it has moved since `quiet_since`: a retry that took it over (even in the same
        process, under the same holder) keeps it while it places afresh."""
        conn.execute(update(RequestRecord).where(RequestRecord.id == record_id, RequestRecord.state == PENDING,
                                                 RequestRecord.holder == holder,
                                                 RequestRecord.updated_at <= quiet_since)
                     .values(state=FAULT, updated_at=self._clock.now()))

    def finish(self, record_id: int, state: str, status: int | None, body: object,
               conn: Connection | None = None) -> None:
        """Close a record, in `conn` when given (the transaction that moves its attempt)."""
        values = {"record_id": record_id, "state": state, "response_status": status, "response_body": body,
                  "updated_at": self._clock.now()}
        if conn is not None:
            conn.execute(self._close, values)
            return
        with self._engine.begin() as own:
            own.execute(self._close, values)

    def purge_expired(self) -> int:
        """Delete answered records past their window, except those an open place attempt points
        at: a very late GTT is judged by how its request was last answered, for longer than a
        duplicate alert's window."""
        with self._engine.begin() as conn:
            return conn.execute(delete(RequestRecord).where(
                RequestRecord.expires_at < self._clock.now(), RequestRecord.state == DONE,
                RequestRecord.id.not_in(self._open_attempts))).rowcount
