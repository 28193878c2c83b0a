"""Reading the audit trail for the trader's page: the same rows and filters as
`python run.py audit` (store/audit_log.py), newest first. Bodies were redacted before they were
written, so nothing read here can hold a key or a token."""
from __future__ import annotations

from openalgo_gtt.store.audit_log import AuditRow, audit_row, recent_audit, status_range

__all__ = ["AuditRow", "AuditView", "status_range"]


class AuditView:
    def __init__(self, engine):
        self._engine = engine

    def recent(self, *, limit: int = 50, endpoint: str | None = None, status: str | None = None,
               key: str | None = None) -> list[AuditRow]:
        """Rows newest first; `status` as status_range reads it (ValueError when it cannot)."""
        return recent_audit(self._engine, limit=limit, endpoint=endpoint or None, status=status or None,
                            key=key or None)

    def one(self, row_id: int) -> AuditRow | None:
        return audit_row(self._engine, row_id)
