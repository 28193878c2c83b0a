"""Reading the audit trail for the trader's page: the same rows and filters as
`python run.py audit` (store/audit_log.py), newest first. Bodies were redacted before they were
written, so nothing read here can hold a key or a token."""
from __future__ import annotations

from datetime import datetime, timedelta

from openalgo_gtt.domain.clock import as_utc, utcnow

from openalgo_gtt.store.audit_log import AuditRow, audit_mentioning, audit_row, recent_audit, status_range

__all__ = ["AuditRow", "AuditView", "status_range"]


class AuditView:
    def __init__(self, engine):
        self._engine = engine

    def recent(self, *, limit: int = 50, endpoint: str | None = None, status: str | None = None,
               key: str | None = None, before_id: int | None = None) -> list[AuditRow]:
        """Rows newest first, older than `before_id` when given (a page further back); `status`
        as status_range reads it (ValueError when it cannot)."""
        return recent_audit(self._engine, limit=limit, endpoint=endpoint or None, status=status or None,
                            key=key or None, before_id=before_id)

    def one(self, row_id: int) -> AuditRow | None:
        return audit_row(self._engine, row_id)

    def life_of(self, trigger_id: str, created_at: datetime | None) -> list[AuditRow]:
        """The requests that named a trigger (its place, modifies, cancel, Upstox's updates of
        it), oldest first, from a minute before it was created."""
        since = (created_at or utcnow()) - timedelta(minutes=1)
        return audit_mentioning(self._engine, trigger_id, as_utc(since))  # stored as UTC (SQLite: naive)
