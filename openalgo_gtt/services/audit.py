"""The audit trail: exactly one `audit_log` row per API request, success or failure.

Secrets never reach the row: every value under a secret-looking key is replaced before writing,
and text kept because it could not be parsed (a broken body, a cut one) is masked by pattern
first (`unparsed`, the one function every such path uses). A request without a valid key keeps
at most UNAUTHENTICATED_BODY_BYTES of its body, so anonymous traffic cannot fill the disk; rows
older than the retention are purged by the watcher (`AuditRetention`).

Broker calls made while a request is handled are collected through a context variable, so the
broker adapters need no knowledge of who is calling them.
"""
from __future__ import annotations

import contextvars
import logging
import re
import threading

from openalgo_gtt.brokers.base import BrokerCall
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.encoding import dumps
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.services.audit_budget import AuditBudget
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.services.retention import Retention
from openalgo_gtt.store.audit_log import AuditRows

log = logging.getLogger(__name__)

REDACTED = "***"
# Field names whose values are secrets wherever they appear in a body (case-insensitive).
SECRET_FIELDS = frozenset(
    {"apikey", "api_key", "x-api-key", "access_token", "token", "refresh_token", "password",
     "secret", "client_secret", "api_secret", "pepper"}
)
# A field name is compared with its case, spaces, dashes, dots and underscores dropped ("API-Key ",
# "x_api_key", "openalgo_apikey"): secret when it is one of these names or ends with one of these
# words ("csrf_token" is; "token_expires_at" and "idempotency_key" are not).
_SECRET_NAMES = frozenset({"key", "auth", "authorization", "credential", "credentials", "pepper", "pw", "pass"})
_SECRET_WORDS = ("apikey", "token", "secret", "secretkey", "privatekey", "password", "passwd", "passphrase",
                 "credential", "credentials", "authorization")
# A value of a key's shape, wherever it is (any field, nested, in a list, inside longer text):
# this gateway's keys (`<16 hex>.<64 hex>`), old 64-hex keys, JWTs (access tokens), bearer tokens.
_KEY_SHAPES = re.compile(
    r"(?i)(?<![0-9a-f])[0-9a-f]{16}\.[0-9a-f]{64}(?![0-9a-f])|(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])"
    r"|\beyJ[\w-]{8,}\.[\w-]+(?:\.[\w-]*)?|(?<=bearer )[\w.~+/-]{16,}=*"
)

# Query-string parameters that are secrets on a GET route, beyond SECRET_FIELDS: the Upstox
# login's one-time authorization `code`, Kite's `request_token`, and the login `state`.
SECRET_QUERY_FIELDS = SECRET_FIELDS | {"code", "request_token", "state", "key", "signature", "sig", "auth"}
# The most of a body kept as text: every unparsed body, and any body of a request without a
# valid key.
UNAUTHENTICATED_BODY_BYTES = 4096
_TEXT_FORM_KEYS = frozenset({"unparsed_body", "truncated", "original_bytes"})

# Secrets in text that could not be parsed can only be found by pattern. The patterns run on an
# ASCII-lowercased copy of the UTF-8 bytes (same length, so spans carry over; no IGNORECASE,
# which is several times slower), and each starts at a fixed token, so scanning is linear.
_FIELD_NAMES = b"|".join(re.escape(name.encode()) for name in sorted(SECRET_QUERY_FIELDS, key=len, reverse=True))
# A secret field's value after `name":`, `name=`, `name:` ...: quoted (to its closing quote, or to
# the end when there is none) or bare (to the next separator).
_SECRET_VALUE = re.compile(
    rb"(?:" + _FIELD_NAMES + rb")[\"']*\s*[:=]\s*"
    rb"(\"[^\"\\]*(?:\\.[^\"\\]*)*\"?|'[^']*'?|[^\s\"',&;}\]]+)"
)
# Any run of 16 or more hex characters: this service's keys (`<16 hex>.<64 hex>`, masked whole),
# old 64-hex keys, webhook secrets, hashes.
_HEX_RUN = re.compile(rb"[0-9a-f]{16,}(?:\.[0-9a-f]{16,})*")
_JWT = re.compile(rb"eyj[\w-]{8,}(?:\.[\w-]*)*")  # an Upstox access token (a JWT)
_BEARER = re.compile(rb"bearer\s+([\w.~+/-]+=*)")
# Text is masked before it is cut, over a window this much longer than what is kept: a secret
# that starts in the kept part is matched whole (a hex run reaching past the window is itself
# longer than 16), so no piece of one survives the cut; the cost stays bounded (a 1 MiB body is
# not scanned whole for an anonymous caller).
_MASK_WINDOW = 8


def _spans(folded: bytes, original: bytes) -> list[tuple[int, int, bytes]]:
    found = []
    for match in _SECRET_VALUE.finditer(folded):
        start, end = match.span(1)
        quote = original[start:start + 1] if original[start:start + 1] in (b'"', b"'") else b""
        found.append((start, end, quote + REDACTED.encode() + quote))
    for pattern in (_HEX_RUN, _JWT):
        found.extend((m.start(), m.end(), REDACTED.encode()) for m in pattern.finditer(folded))
    found.extend((*m.span(1), REDACTED.encode()) for m in _BEARER.finditer(folded))
    return sorted(found)


def _mask(data: bytes) -> bytes:
    out, at = [], 0
    for start, end, replacement in _spans(data.lower(), data):  # bytes.lower() folds ASCII only
        if start < at:  # overlaps one already masked: mask through its end too
            if end > at:
                at = end
            continue
        out += [data[at:start], replacement]
        at = end
    out.append(data[at:])
    return b"".join(out)


def redact_text(text: str) -> str:
    """`text` with every secret found by pattern masked: a secret field's value (`"apikey": "..."`,
    `token=...`), this service's API keys, any run of 16 or more hex characters, JWTs and bearer
    tokens."""
    return _mask(text.encode("utf-8", "surrogatepass")).decode("utf-8", "replace")


def unparsed(raw: bytes | str, limit: int = UNAUTHENTICATED_BODY_BYTES) -> dict:
    """The audit's form of text kept as text (the one function every such path uses): masked
    first, then cut to `limit` bytes; a cut one says so, with the size it had."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    masked = _mask(data[:limit * _MASK_WINDOW])
    if len(data) <= limit and len(masked) <= limit:
        return {"unparsed_body": masked.decode("utf-8", "replace")}
    return {"unparsed_body": masked[:limit].decode("utf-8", "ignore"), "truncated": True,
            "original_bytes": len(data)}


def redact_query(args: dict) -> dict:
    """A GET route's query parameters for the audit: secret parameters masked, and every other
    value masked by pattern."""
    return {
        (mask_key_shapes(k) if isinstance(k, str) else k):
            REDACTED if isinstance(k, str) and (k.lower() in SECRET_QUERY_FIELDS or is_secret_field(k))
            else redact_text(v) if isinstance(v, str) else v
        for k, v in args.items()
    }


def bounded(body, authenticated: bool):
    """A request body as the audit keeps it: whole for a caller with a valid key, else at most
    UNAUTHENTICATED_BODY_BYTES (its text form, cut and marked)."""
    if authenticated or body is None:
        return body
    if isinstance(body, dict) and body.keys() <= _TEXT_FORM_KEYS:
        return body  # already text, bounded when it was made
    text = dumps(body)
    if len(text.encode("utf-8")) <= UNAUTHENTICATED_BODY_BYTES:
        return body
    return unparsed(text)


_broker_calls: contextvars.ContextVar[list[BrokerCall] | None] = contextvars.ContextVar(
    "broker_calls", default=None
)


def is_secret_field(name: object) -> bool:
    """Whether a field of this name holds a secret, however it is written."""
    if not isinstance(name, str):
        return False
    folded = re.sub(r"[\s_\-.]", "", name.lower())
    return (name.lower() in SECRET_FIELDS or folded in _SECRET_NAMES
            or folded.endswith(_SECRET_WORDS))


def mask_key_shapes(text: str) -> str:
    """`text` with every value of a key's shape (API keys, old 64-hex keys, JWTs, bearer tokens)
    masked, wherever it stands in it."""
    return _KEY_SHAPES.sub(REDACTED, text) if len(text) >= 16 else text


def redact(value):
    """A copy of a JSON-like value with every secret field's value replaced, and every string
    (a key, a value, nested, in a list) with key-shaped text masked."""
    if isinstance(value, dict):
        return {
            (mask_key_shapes(k) if isinstance(k, str) else k): (REDACTED if is_secret_field(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return mask_key_shapes(value)
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


# Requests that prove a secret of their own though they carry no API key: an accepted Upstox
# webhook or login callback. Their rows are never summarised.
_KEYLESS_ACCEPTED = ("/upstox/", "/kite/")


def budgeted(ctx: RequestContext, status: int) -> bool:
    """Whether the request's row counts against the audit budget: no valid key, and not an
    accepted webhook or callback."""
    if ctx.api_key_name is not None:
        return False
    return not (status < 400 and ctx.endpoint.startswith(_KEYLESS_ACCEPTED))


class AuditTrail:
    """Writes the audit rows. Rows of requests without a valid key count against `budget`
    (services/audit_budget.py): past it they are counted into one summary row per address and
    minute, written by a background flush once the minute ends, or by `close()`."""

    def __init__(self, rows: AuditRows, budget: AuditBudget | None = None):
        self._rows = rows
        self._budget = budget if budget is not None else AuditBudget()
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._stop = threading.Event()

    @staticmethod
    def entry(ctx: RequestContext, status: int, response_body) -> AuditEntry:
        """The audit row of the request `ctx` describes, answered with `status` and `response_body`."""
        return AuditEntry(
            request_id=ctx.request_id, created_at=utcnow(), method=ctx.method, endpoint=mask_key_shapes(ctx.endpoint),
            client_addr=ctx.client_addr, api_key_name=ctx.api_key_name,
            request_body=bounded(redact(ctx.audit_body(status)), authenticated=ctx.api_key_name is not None),
            response_body=redact(response_body),
            http_status=status, latency_ms=ctx.elapsed_ms(), broker_calls=list(ctx.broker_calls),
            error=mask_key_shapes(ctx.error) if ctx.error else ctx.error,
            traceback=mask_key_shapes(ctx.traceback) if ctx.traceback else ctx.traceback,
        )

    def record(self, ctx: RequestContext, status: int, response_body) -> bool:
        """Write the request's row on its own, or count it into its address's summary for the
        minute when it has no valid key and the budget is spent (never raises)."""
        if budgeted(ctx, status) and not self._budget.admit(ctx.client_addr):
            entry = AuditEntry(request_id=ctx.request_id, created_at=utcnow(), method=ctx.method,
                               endpoint=mask_key_shapes(ctx.endpoint), client_addr=ctx.client_addr,
                               api_key_name=None, request_body=None, response_body=None, http_status=status,
                               latency_ms=0.0, broker_calls=[], error=None, traceback=None)
            self._budget.hold(entry)
            self._start_flusher()
            return True
        return self._rows.write(self.entry(ctx, status, response_body))

    def flush(self, everything: bool = False) -> int:
        """Write the summaries of the minutes that have ended (every one with `everything`)."""
        due = self._budget.due(everything)
        for entry in due:
            self._rows.write(entry)
        return len(due)

    def _start_flusher(self) -> None:
        with self._flusher_lock:
            if self._flusher is not None:  # it looks at what is pending, under this lock, before it ends
                return
            self._flusher = threading.Thread(target=self._flush_until_idle, name="audit-summaries", daemon=True)
            self._flusher.start()

    def _flush_until_idle(self) -> None:
        while not self._stop.wait(self._budget.seconds_to_next_window() + 0.5):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the next minute tries again
                log.warning("audit summaries could not be written; retrying", exc_info=True)
            with self._flusher_lock:
                if not self._budget.pending():
                    self._flusher = None
                    return

    def close(self) -> None:
        """Write every pending summary now (the process is stopping)."""
        self._stop.set()
        self.flush(everything=True)

    def write(self, entry: AuditEntry) -> bool:
        """Write a prepared row on its own (never raises); it is redacted here."""
        entry.request_body = bounded(redact(entry.request_body), authenticated=entry.api_key_name is not None)
        entry.response_body = redact(entry.response_body)
        entry.endpoint = mask_key_shapes(entry.endpoint)
        if entry.error:
            entry.error = mask_key_shapes(entry.error)
        return self._rows.write(entry)

    def exists(self, request_id: str) -> bool:
        return self._rows.exists(request_id)


class AuditRetention(Retention):
    """Deletes audit rows older than AUDIT_RETENTION_DAYS (see services/retention.py)."""

    what = "audit rows"
