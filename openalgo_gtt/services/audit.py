"""The audit trail: exactly one `audit_log` row per API request, success or failure.

Secrets never reach the row: every value under a secret-looking key is replaced before writing.
Broker calls made while a request is handled are collected through a context variable, so the
broker adapters need no knowledge of Flask or of this module's callers.
"""
from __future__ import annotations

import contextvars
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select

from openalgo_gtt.brokers.base import BrokerCall
from openalgo_gtt.store.models import AuditRecord

log = logging.getLogger(__name__)

REDACTED = "***"
# Field names whose values are secrets wherever they appear in a body (case-insensitive).
SECRET_FIELDS = frozenset(
    {"apikey", "api_key", "x-api-key", "access_token", "token", "refresh_token", "password",
     "secret", "client_secret", "api_secret", "pepper"}
)

_broker_calls: contextvars.ContextVar[list[BrokerCall] | None] = contextvars.ContextVar(
    "broker_calls", default=None
)


def redact(value):
    """A copy of a JSON-like value with every secret field's value replaced."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in SECRET_FIELDS else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def start_collecting_broker_calls() -> list[BrokerCall]:
    calls: list[BrokerCall] = []
    _broker_calls.set(calls)
    return calls


def stop_collecting_broker_calls() -> None:
    _broker_calls.set(None)


def observe_broker_call(call: BrokerCall) -> None:
    """The observer every broker adapter reports its HTTP calls to."""
    calls = _broker_calls.get()
    if calls is not None:
        calls.append(call)


@dataclass
class AuditEntry:
    request_id: str
    created_at: datetime
    method: str
    endpoint: str
    client_addr: str | None
    api_key_name: str | None
    request_body: object
    response_body: object
    http_status: int
    latency_ms: float
    broker_calls: list[BrokerCall] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None


class AuditLog:
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
        """Store one entry in the caller's transaction: a place's record of its outcome and its
        audit row are committed together, so neither exists without the other."""
        conn.execute(self._insert, {
            "request_id": entry.request_id,
            "created_at": entry.created_at,
            "method": entry.method,
            "endpoint": entry.endpoint[:128],
            "client_addr": (entry.client_addr or "")[:64] or None,
            "api_key_name": entry.api_key_name,
            "request_body": redact(entry.request_body),
            "response_body": redact(entry.response_body),
            "http_status": entry.http_status,
            "latency_ms": round(entry.latency_ms, 3),
            "broker_calls": [asdict(call) for call in entry.broker_calls] or None,
            "error": entry.error,
            "traceback": entry.traceback,
        })
