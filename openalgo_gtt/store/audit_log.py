"""The audit_log table: one row per request, written alone or inside the transaction that
records a place's outcome (so neither exists without the other). Redaction happens before the
entry reaches this module (services/audit.py). Rows past the retention are deleted here, in
bounded batches (`purge_before`)."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from sqlalchemy import Connection, Engine, String, cast, delete, func, insert, select

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.encoding import storable, storable_value
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.logging_setup import EveryInterval
from openalgo_gtt.store.models import AuditRecord

log = logging.getLogger(__name__)
_failures = EveryInterval(log, seconds=60.0)  # a failing write is logged once a minute, not per request

_ENTRY_FIELDS = tuple(f.name for f in fields(AuditEntry))


class AuditRows:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._insert = insert(AuditRecord.__table__)

    def write(self, entry: AuditEntry) -> bool:
        """Store one entry in a transaction of its own. Never raises: a failed audit write must
        not fail the request."""
        try:
            with self._engine.begin() as conn:
                self.write_in(conn, entry)
            return True
        except Exception as exc:  # noqa: BLE001 - the audit must never turn a success into a failure
            # The traceback once a minute: a cause that repeats on every request (a full disk, a
            # database down) must not make the log grow faster than the audit would have.
            _failures.error(type(exc).__name__, "could not write the audit record for request %s: %s",
                            entry.request_id, f"{type(exc).__name__}: {str(exc)[:200]}", exc_info=True)
            return False

    def exists(self, request_id: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(AuditRecord.id).where(AuditRecord.request_id == request_id)).first() is not None

    def purge_before(self, cutoff: datetime, batch: int) -> int:
        """Delete at most `batch` rows written before `cutoff`, oldest first, in one short
        transaction (by the created_at index); returns how many went."""
        oldest = (select(AuditRecord.id).where(AuditRecord.created_at < cutoff)
                  .order_by(AuditRecord.created_at).limit(batch))
        with self._engine.begin() as conn:
            ids = list(conn.execute(oldest).scalars())
            if ids:
                conn.execute(delete(AuditRecord).where(AuditRecord.id.in_(ids)))
        return len(ids)

    def stats(self) -> tuple[int, datetime | None]:
        """How many rows there are, and when the oldest was written (None when there are none)."""
        with self._engine.connect() as conn:
            count, oldest = conn.execute(select(func.count(), func.min(AuditRecord.created_at))
                                         .select_from(AuditRecord)).one()
        return count, as_utc(oldest)

    def write_in(self, conn: Connection, entry: AuditEntry) -> None:
        # The entry's fields are the table's columns; a few are bounded here, and every text is
        # made storable (a NUL or a lone surrogate, from a path or a body, written as its escape:
        # PostgreSQL's text refuses a NUL, and the row would be lost). A shallow copy: asdict
        # would deep-copy the (already redacted) bodies for nothing.
        row = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
        row.update(endpoint=entry.endpoint[:128], client_addr=(entry.client_addr or "")[:64] or None,
                   latency_ms=round(entry.latency_ms, 3),
                   broker_calls=[asdict(call) for call in entry.broker_calls] or None)
        for name, value in row.items():
            if isinstance(value, str):
                row[name] = storable(value)
            elif isinstance(value, (dict, list)):
                row[name] = storable_value(value)
        row.update(endpoint=row["endpoint"][:128], method=row["method"][:8])
        conn.execute(self._insert, row)


# --- reading the trail (python run.py audit) ------------------------------------------------------

@dataclass(frozen=True)
class AuditRow:
    """One stored audit row as `python run.py audit` shows it (bodies already redacted)."""

    id: int
    request_id: str
    created_at: datetime
    method: str
    endpoint: str
    client_addr: str | None
    api_key_name: str | None
    http_status: int
    latency_ms: float
    error: str | None
    request_body: object
    response_body: object
    broker_calls: object = None  # [{"method", "path", "status", "latency_ms", "error"}] or None


_AUDIT = AuditRecord.__table__
_ROW_COLUMNS = [_AUDIT.c[name] for name in AuditRow.__dataclass_fields__]


def status_range(status: str) -> tuple[int, int]:
    """`--status` as an inclusive range of HTTP statuses: "200", "4xx", "error" (400 and up), "ok"
    (below 400). ValueError for anything else."""
    text = status.strip().lower()
    if text == "error":
        return 400, 599
    if text == "ok":
        return 100, 399
    if len(text) == 3 and text[0].isdigit() and text[1:] == "xx":
        return int(text[0]) * 100, int(text[0]) * 100 + 99
    if text.isdigit():
        return int(text), int(text)
    raise ValueError(f"status must be a number (404), a class (4xx), ok or error (got {status!r})")


def audit_row(engine: Engine, row_id: int) -> AuditRow | None:
    """One audit row by its id, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(*_ROW_COLUMNS).where(_AUDIT.c.id == row_id)).first()
    return AuditRow(*row[:2], as_utc(row[2]), *row[3:]) if row else None


def audit_mentioning(engine: Engine, text: str, since: datetime, limit: int = 20) -> list[AuditRow]:
    """Rows written since `since` whose request or response mentions `text` (a trigger id),
    oldest first: the life of one GTT as the trader's page shows it. `since` keeps the scan to
    the created_at index's range rather than the whole table."""
    mentions = (cast(_AUDIT.c.request_body, String).contains(text, autoescape=True)
                | cast(_AUDIT.c.response_body, String).contains(text, autoescape=True))
    query = (select(*_ROW_COLUMNS).where(_AUDIT.c.created_at >= since, mentions)
             .order_by(_AUDIT.c.id).limit(limit))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [AuditRow(*row[:2], as_utc(row[2]), *row[3:]) for row in rows]


def recent_audit(engine: Engine, *, limit: int = 20, endpoint: str | None = None, status: str | None = None,
                 key: str | None = None, since: datetime | None = None, until: datetime | None = None,
                 after_id: int | None = None, before_id: int | None = None) -> list[AuditRow]:
    """Audit rows, newest first, at most `limit`: optionally of one endpoint (a path, or its last
    part: "placegtt"), HTTP status (see status_range), key name, time window, newer than
    `after_id` (to follow the trail) or older than `before_id` (the next page)."""
    query = select(*_ROW_COLUMNS).order_by(_AUDIT.c.id.desc()).limit(limit)
    if endpoint:
        path = endpoint.strip()
        column = _AUDIT.c.endpoint
        query = query.where(column == path if path.startswith("/")
                            else (column == path) | column.endswith("/" + path, autoescape=True))
    if status:
        low, high = status_range(status)
        query = query.where(_AUDIT.c.http_status.between(low, high))
    if key:
        query = query.where(_AUDIT.c.api_key_name == key)
    if since is not None:
        query = query.where(_AUDIT.c.created_at >= since)
    if until is not None:
        query = query.where(_AUDIT.c.created_at <= until)
    if after_id is not None:
        query = query.where(_AUDIT.c.id > after_id)
    if before_id is not None:
        query = query.where(_AUDIT.c.id < before_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [AuditRow(*row[:2], as_utc(row[2]), *row[3:]) for row in rows]
