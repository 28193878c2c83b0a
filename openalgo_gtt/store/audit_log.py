"""The audit_log table: one row per request, written alone or inside the transaction that
records a place's outcome (so neither exists without the other). Redaction happens before the
entry reaches this module (services/audit.py). Rows past the retention are deleted here, in
bounded batches (`purge_before`)."""
from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.store.models import AuditRecord

log = logging.getLogger(__name__)


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
        except Exception:  # noqa: BLE001 - the audit must never turn a success into a failure
            log.exception("could not write the audit record for request %s", entry.request_id)
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
        conn.execute(self._insert, {
            "request_id": entry.request_id,
            "created_at": entry.created_at,
            "method": entry.method,
            "endpoint": entry.endpoint[:128],
            "client_addr": (entry.client_addr or "")[:64] or None,
            "api_key_name": entry.api_key_name,
            "request_body": entry.request_body,
            "response_body": entry.response_body,
            "http_status": entry.http_status,
            "latency_ms": round(entry.latency_ms, 3),
            "broker_calls": [asdict(call) for call in entry.broker_calls] or None,
            "error": entry.error,
            "traceback": entry.traceback,
        })
