"""The audit_log table: one row per request, written alone or inside the transaction that
records a place's outcome (so neither exists without the other). Redaction happens before the
entry reaches this module (services/audit.py)."""
from __future__ import annotations

import logging
from dataclasses import asdict

from sqlalchemy import Connection, Engine, insert, select

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
