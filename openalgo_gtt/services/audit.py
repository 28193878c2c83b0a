"""The audit trail: exactly one `audit_log` row per API request, success or failure.

Secrets never reach the row: every value under a secret-looking key is replaced before writing.
Broker calls made while a request is handled are collected through a context variable, so the
broker adapters need no knowledge of who is calling them.
"""
from __future__ import annotations

import contextvars

from openalgo_gtt.brokers.base import BrokerCall
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.store.audit_log import AuditRows

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


def collect_broker_calls(into: list[BrokerCall]) -> None:
    """Broker calls made from now on in this context are appended to `into`."""
    _broker_calls.set(into)


def stop_collecting_broker_calls() -> None:
    _broker_calls.set(None)


def observe_broker_call(call: BrokerCall) -> None:
    """The observer every broker adapter reports its HTTP calls to."""
    calls = _broker_calls.get()
    if calls is not None:
        calls.append(call)


class AuditTrail:
    def __init__(self, rows: AuditRows):
        self._rows = rows

    @staticmethod
    def entry(ctx: RequestContext, status: int, response_body) -> AuditEntry:
        """The audit row of the request `ctx` describes, answered with `status` and `response_body`."""
        return AuditEntry(
            request_id=ctx.request_id, created_at=utcnow(), method=ctx.method, endpoint=ctx.endpoint,
            client_addr=ctx.client_addr, api_key_name=ctx.api_key_name,
            request_body=redact(ctx.audit_body(status)), response_body=redact(response_body),
            http_status=status, latency_ms=ctx.elapsed_ms(), broker_calls=list(ctx.broker_calls),
            error=ctx.error, traceback=ctx.traceback,
        )

    def record(self, ctx: RequestContext, status: int, response_body) -> bool:
        """Write the request's row on its own (never raises)."""
        return self._rows.write(self.entry(ctx, status, response_body))

    def write(self, entry: AuditEntry) -> bool:
        """Write a prepared row on its own (never raises); it is redacted here."""
        entry.request_body, entry.response_body = redact(entry.request_body), redact(entry.response_body)
        return self._rows.write(entry)

    def exists(self, request_id: str) -> bool:
        return self._rows.exists(request_id)
