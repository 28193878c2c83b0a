"""Exactly-once writes: idempotency keys, duplicate alerts, and answers that were lost.

- `idempotency_key` in the body (or an `Idempotency-Key` header): the same key from the same API
  key within 24 hours gets the first answer and never reaches the broker again; a second request
  arriving while the first is still running waits for its answer as long as the first may run
  (its broker budget, a second more, at most WAIT_FOR_FIRST), then gets a 503 with retry_after.
- Without a key, an identical place body from the same API key within the dedupe window is the
  same request (TradingView re-sends an alert that got a 5xx): the first answer, marked
  `"duplicate": true`, no broker call, no trade counted.
- Only definitive answers are replayed: a success, or a refusal the caller must fix (4xx other
  than 409 and 429, which depend on state that changes). After a broker fault the record stays
  open, and a retry first looks for the GTT at the broker, then places it if it is absent.

A place claims its key only when it begins its attempt, in the unit of work that takes its trade
(services/place.py); modify and cancel claim theirs before they run. What a place attempt does
at the broker is its own row's business (domain/place_attempt.py); the record only keeps the
request's answer.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Callable

from openalgo_gtt.services.answers import ApiError, error_status_and_body, placed_answer
from openalgo_gtt.services.audit import AuditTrail
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.store.request_records import DONE, FAULT, PENDING, Snapshot, holder_alive
from openalgo_gtt.store.unit_of_work import Store, UnitOfWork

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
# At most this many seconds a duplicate waits for the first request's answer; less when the first
# has run past its own budget at the broker (ExactlyOnce's `first_may_run`): then a 503 with
# retry_after, which TradingView re-sends, rather than silence past the caller's patience.
WAIT_FOR_FIRST = 10.0
RETRY_RUNNING_AFTER = 2
MAX_KEY_LENGTH = 128
NOT_IN_DEDUPE_HASH = frozenset({"apikey", "idempotency_key"})
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?\s*")


class AlreadyClaimed(Exception):
    """Another request holds this request's key: raised inside the unit of work that tried to
    claim it, so that unit (and any trade it took) is rolled back."""


@dataclass(frozen=True)
class RequestKey:
    api_key_name: str
    idem_key: str
    endpoint: str
    request_hash: str  # the operation and body: an idempotency key belongs to one request
    ttl: timedelta


class KeyReused(ApiError):
    """Stripe's rule: an idempotency key names one request (operation and body). Reused for
    another, it is refused before anything reaches the broker."""

    def __init__(self, explicit: str):
        super().__init__(422, f"idempotency_key {explicit!r} was used for a different request "
                              "(another operation or body); use a new key for a new request")


class RequestHandle:
    """This request's record, as the place use case holds it.

    A fresh place claims its key only when it begins its attempt, in the unit of work that takes
    its trade (`claim`): a request refused before that (a bad symbol, a price off the tick)
    leaves no record to replay. A retry already holds the record. Once the broker has the GTT,
    `answering` fixes the answer and its audit row, which the attempt's RECORDED move writes
    before the caller has the answer. A failure after the attempt began closes the record in the
    attempt's own move (`closed_by`).
    """

    def __init__(self, audit: AuditTrail, ctx: RequestContext, key: RequestKey,
                 render: Callable[[object], dict], snapshot: Snapshot | None = None):
        self.render = render
        self._audit = audit
        self.ctx = ctx
        self._key = key
        self.record_id = None if snapshot is None else snapshot.id
        self.attempt = None  # the place attempt this request began (domain/place_attempt.py)
        self.answer: dict | None = None
        self.stored_answer: tuple[int, dict] | None = None  # (status, body) kept for duplicates
        self.audit_entry = None
        self.closed = False  # the record was closed with the attempt's move
        self._claimed_now = False

    def claim(self, uow: UnitOfWork) -> int:
        """The record's id, claimed in `uow` unless this request holds it already."""
        if self.record_id is None:
            key = self._key
            record_id = uow.claim_request(key.api_key_name, key.idem_key, key.endpoint, key.request_hash, key.ttl)
            if record_id is None:
                raise AlreadyClaimed()
            self.record_id, self._claimed_now = record_id, True
        return self.record_id

    def claim_rolled_back(self) -> None:
        """The unit of work that claimed the key did not commit: the claim is void (its id may
        even be given to another request's record)."""
        if self._claimed_now:
            self.record_id, self._claimed_now = None, False

    def began(self, attempt) -> None:
        self.attempt = attempt

    def answering(self, placed) -> None:
        """The broker has the GTT: fix the answer and its audit row, written with the attempt's
        RECORDED move."""
        self.answer = self.render(placed)  # kept: the caller gets exactly what is stored
        stored = {**self.answer, "request_id": self.ctx.request_id}
        self.stored_answer = (200, stored)
        self.audit_entry = self._audit.entry(self.ctx, 200, stored)
        self.ctx.audit_written = True  # written with the record of the GTT

    def queued(self, body: dict) -> tuple[int, dict]:
        """The place was queued: its 202 answer (kept for duplicates) and audit row, written in
        the unit of work that queues it."""
        self.answer = body
        self.stored_answer = (202, {**body, "request_id": self.ctx.request_id})
        self.audit_entry = self._audit.entry(self.ctx, 202, self.stored_answer[1])
        self.ctx.audit_written = True
        self.closed = True
        return self.stored_answer

    def not_recorded(self) -> None:
        """The RECORDED move failed: the caller hears an error instead, audited as usual."""
        self.answer = self.stored_answer = self.audit_entry = None
        self.ctx.audit_written = False

    def closed_by(self, failed: Callable, attempt, exc: BaseException) -> None:
        """The broker call failed after the attempt began: the attempt moves (SETTLING or
        REFUSED) and the record closes in one unit of work. A failure that does not say whether
        the broker was reached (a bug, a store fault) is taken as "may have": it settles (found
        and recorded, or lapsed and its trade given back), never left counted with nothing to
        settle it."""
        may_have_reached = getattr(exc, "may_have_reached", True)
        failed(attempt, may_have_reached, record_outcome(exc, self.ctx.request_id, unknown=may_have_reached))
        self.closed = True


def record_outcome(exc: BaseException, request_id: str, *, unknown: bool) -> tuple[str, int, dict | None]:
    """How a failed request's record closes: a definitive refusal is kept and replayed to
    duplicates (DONE); anything else leaves it open for a retry (FAULT)."""
    status, envelope = error_status_and_body(exc)
    if _definitive(status) and not unknown:
        return DONE, status, {**envelope, "request_id": request_id}
    return FAULT, status, None


def _body_hash(endpoint: str, body: dict) -> str:
    """The request's fingerprint: its operation and body, with numbers in one spelling, so the
    same request sent by another client (10 or "10", 9.61 or 9.610) is still the same request."""
    canonical = {k: _one_spelling(v) for k, v in body.items() if k not in NOT_IN_DEDUPE_HASH}
    text = json.dumps([endpoint, canonical], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _one_spelling(value: object) -> object:
    if isinstance(value, dict):
        return {k: _one_spelling(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_one_spelling(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return value
    if isinstance(value, str) and not _NUMBER.fullmatch(value):
        return value
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return value
    return f"number:{number.normalize()}" if number.is_finite() else value


def _definitive(status: int) -> bool:
    return status < 500 and status not in (409, 429)


def _replay(snapshot: Snapshot) -> tuple[dict, int]:
    body = copy.deepcopy(snapshot.response_body) or {}
    if isinstance(body, dict):
        body["original_request_id"] = body.pop("request_id", None)
        body["duplicate"] = True
    return body, snapshot.response_status or 200


class ExactlyOnce:
    def __init__(self, store: Store, audit: AuditTrail, dedupe_window_seconds: int, stale_after: timedelta,
                 first_may_run: timedelta):
        self._store = store
        self._clock = store.clock
        # How long an attempt may run (its broker budget and a second for its own writes): a
        # duplicate waits for its answer no longer than this after it began.
        self._first_may_run = first_may_run
        self._records = store.requests
        self._audit = audit
        self._dedupe_window = dedupe_window_seconds
        self.stale_after = stale_after

    def key(self, ctx: RequestContext, endpoint: str, body: dict, explicit: object, dedupe: bool) -> RequestKey:
        """The record key: the caller's idempotency key, else (for a place) the body's hash, else
        this request alone."""
        request_hash = _body_hash(endpoint, body)
        if explicit is not None and explicit != "":
            if not isinstance(explicit, (str, int)) or isinstance(explicit, bool):
                raise ApiError(400, "idempotency_key must be a string")
            explicit = str(explicit).strip()
            if not explicit or len(explicit) > MAX_KEY_LENGTH:
                raise ApiError(400, f"idempotency_key must be 1 to {MAX_KEY_LENGTH} characters")
            return RequestKey(ctx.api_key_name, f"key:{explicit}", endpoint, request_hash, IDEMPOTENCY_TTL)
        if dedupe and self._dedupe_window > 0:
            return RequestKey(ctx.api_key_name, f"body:{request_hash}", endpoint, request_hash,
                              timedelta(seconds=self._dedupe_window))
        return RequestKey(ctx.api_key_name, f"request:{ctx.request_id}", endpoint, request_hash,
                          timedelta(seconds=self._dedupe_window or 60))

    def _stale(self, snapshot: Snapshot) -> bool:
        return snapshot.updated_at < self._clock.now() - self.stale_after or holder_alive(snapshot.holder) is False

    def place(self, ctx: RequestContext, key: RequestKey, action: Callable[[RequestHandle], object],
              render: Callable[[object], dict] = placed_answer) -> tuple[dict, int]:
        """Run a place at most once per key: `action` claims the key when it writes its intent
        (raising AlreadyClaimed when the key is taken) and closes the record after the answer;
        `render` words its result."""
        return self._once(ctx, key, action, render)

    def run(self, ctx: RequestContext, key: RequestKey, action: Callable[[], dict]) -> tuple[dict, int]:
        """Run a modify or cancel at most once per key: the key is claimed before `action`, which
        returns the answer."""
        return self._once(ctx, key, lambda _attempt: action(), None)

    def _once(self, ctx: RequestContext, key: RequestKey, action, render) -> tuple[dict, int]:
        claims_itself = render is not None
        records = self._records
        deadline = self._clock.monotonic() + WAIT_FOR_FIRST
        # A caller's own key may have been used before (a retry, or a reuse to refuse): looked up
        # first, so neither plans nor reaches the broker. A body-hash key is claimed straight away.
        snapshot = records.existing(key.api_key_name, key.idem_key) if key.idem_key.startswith("key:") else None
        while True:
            if snapshot is None:
                if claims_itself:
                    try:
                        return self._run(RequestHandle(self._audit, ctx, key, render), action, claims_itself)
                    except AlreadyClaimed:
                        snapshot = records.existing(key.api_key_name, key.idem_key)
                        continue
                snapshot, created = records.claim(key.api_key_name, key.idem_key, key.endpoint, key.request_hash,
                                                  key.ttl)
                if created:
                    return self._run(RequestHandle(self._audit, ctx, key, render, snapshot), action, claims_itself)
            if snapshot.endpoint != key.endpoint or (snapshot.request_hash or key.request_hash) != key.request_hash:
                raise KeyReused(key.idem_key.removeprefix("key:"))
            if snapshot.state == DONE:
                return _replay(snapshot)
            if snapshot.state == FAULT or (snapshot.state == PENDING and self._stale(snapshot)):
                if records.take_over(snapshot):
                    return self._run(RequestHandle(self._audit, ctx, key, render, snapshot), action, claims_itself)
            elif (self._clock.monotonic() > deadline
                  or self._clock.now() > snapshot.updated_at + self._first_may_run):
                raise ApiError(503, f"the same request is still being processed; retry in {RETRY_RUNNING_AFTER} s",
                               retry_after=RETRY_RUNNING_AFTER)
            else:
                self._clock.sleep(0.05)
            snapshot = records.existing(key.api_key_name, key.idem_key)

    def _run(self, request: RequestHandle, action, claims_itself: bool) -> tuple[dict, int]:
        records, request_id = self._records, request.ctx.request_id
        try:
            result = action(request)
        except AlreadyClaimed:
            raise
        except Exception as exc:
            if request.record_id is None or request.closed:
                raise  # refused before it claimed anything, or closed with its attempt's move
            # No attempt of this request reached the broker (a retry refused, or one whose
            # earlier attempt still settles: that attempt is its own row, and stays open).
            state, status, body = record_outcome(exc, request_id, unknown=False)
            records.finish(request.record_id, state, status, body)
            raise
        if request.answer is not None:
            return request.answer, request.stored_answer[0]
        answer = request.render(result) if claims_itself else result
        records.finish(request.record_id, DONE, 200, {**answer, "request_id": request_id})
        return answer, 200
