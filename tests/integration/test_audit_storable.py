"""Every text the audit stores is storable (issue 25, item 6): a NUL (PostgreSQL's text cannot
hold one) or a lone surrogate in any field is written as its escape, and the row is kept."""
from __future__ import annotations

from sqlalchemy import select

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.store.audit_log import AuditRows
from openalgo_gtt.store.models import AuditRecord


def test_nul_and_lone_surrogates_in_every_text_are_escaped_and_the_row_kept(db_engine):
    bad = "a\x00b\ud800c"
    entry = AuditEntry(request_id="nul-1", created_at=utcnow(), method="P\x00ST", endpoint="/api/v1/" + bad,
                       client_addr="127.0.0.1", api_key_name=bad, request_body={bad: [bad, {"k": bad}]},
                       response_body={"message": bad}, http_status=400, latency_ms=1.0, error=bad, traceback=bad)
    assert AuditRows(db_engine).write(entry)
    with db_engine.connect() as conn:
        row = conn.execute(select(AuditRecord.__table__).where(AuditRecord.request_id == "nul-1")).mappings().one()
    assert row["endpoint"] == "/api/v1/a\\u0000b\\ud800c"
    assert row["request_body"] == {"a\\u0000b\\ud800c": ["a\\u0000b\\ud800c", {"k": "a\\u0000b\\ud800c"}]}
    assert row["error"] == row["traceback"] == row["api_key_name"] == "a\\u0000b\\ud800c"
