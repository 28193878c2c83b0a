"""Exactly-once writes: idempotency keys, duplicate alerts, and answers that were lost.

- `idempotency_key` in the body (or an `Idempotency-Key` header): the same key from the same API
  key within 24 hours gets the first answer and never reaches the broker again; a second request
  arriving while the first is still running waits for it.
- Without a key, an identical place body from the same API key within DEDUPE_WINDOW_SECONDS is
  the same request (TradingView re-sends an alert that got a 5xx): the first answer, marked
  `"duplicate": true`, no broker call, no trade counted.
- Only definitive answers are replayed: a success, or a refusal the caller must fix (4xx other
  than 409 and 429, which depend on state that changes). After a broker fault the record stays
  open, and a retry first looks for the GTT at the broker, then places it if it is absent.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from datetime import timedelta
from typing import Callable

from flask import current_app, g, request

from openalgo_gtt.api.errors import ApiError, error_status_and_body
from openalgo_gtt.api.lifecycle import after_answer, audit_entry
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.services.audit import AuditEntry
from openalgo_gtt.store.request_records import DONE, FAULT, PENDING, RequestRecords, Snapshot, holder_alive

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
WAIT_FOR_FIRST = 10.0  # seconds a duplicate waits for the first request's answer
MAX_KEY_LENGTH = 128
NOT_IN_DEDUPE_HASH = frozenset({"apikey", "idempotency_key"})


class AlreadyClaimed(Exception):
    """Another request holds this request's key: raised inside the transaction that tried to
    claim it, so that transaction (and any trade it reserved) is rolled back."""


class Attempt:
    """What the GTT service sees of this request's record (services.gtt.Attempt).

    A fresh place claims its key only when it writes its intent, in the transaction that
    reserves the trade: one statement, and a request refused before that (a bad symbol, a
    price off the tick) leaves no record to replay. A retry of an earlier attempt already holds
    the record and updates it. Once the broker has the GTT, `answering` fixes the answer and its
    audit row while the request is at hand, and `close` writes both, after the caller has the
    answer, in the transaction that records the GTT.
    """

    def __init__(self, records: RequestRecords, key: tuple[str, str, str, timedelta],
                 render: Callable[[object], dict] | None, snapshot: Snapshot | None = None, retry: bool = False):
        self._records = records
        self._key = key  # (api key name, idempotency key, endpoint, time to live)
        self._render = render
        self.record_id = None if snapshot is None else snapshot.id
        self.retry = retry
        self.plan = None if snapshot is None else snapshot.plan
        self.reserved_day = None if snapshot is None else snapshot.reserved_day
        self.attempt_started_at = None if snapshot is None else snapshot.attempt_started_at
        self.keeps_reservation = False
        self.answer: dict | None = None
        self._stored: dict | None = None  # the answer as kept for duplicates (with the request id)
        self._audit: AuditEntry | None = None
        self._audit_log = None  # the gateway's AuditLog, taken while the request is at hand
        self._claimed_now = False

    def save_intent(self, conn, plan, reserved_day, started_at) -> None:
        if self.record_id is None:
            name, idem_key, endpoint, ttl = self._key
            record_id = self._records.claim_with_intent(conn, name, idem_key, endpoint, ttl, plan, reserved_day,
                                                        started_at)
            if record_id is None:
                raise AlreadyClaimed()
            self.record_id, self._claimed_now = record_id, True
        else:
            self._records.save_intent(self.record_id, plan, reserved_day, started_at, conn)
        self.keeps_reservation = reserved_day is not None

    def intent_rolled_back(self) -> None:
        """The transaction that wrote the intent did not commit: a claim made in it is void (its
        id may even be given to another request's record)."""
        if self._claimed_now:
            self.record_id, self._claimed_now = None, False
        self.keeps_reservation = False

    def answering(self, result) -> None:
        """The broker has the GTT: fix the answer and its audit row now, while the request is
        at hand (close runs after the answer has gone, outside the request)."""
        self.answer = self._render(result)  # kept: the caller gets exactly what is stored
        self._stored = {**self.answer, "request_id": g.request_id}
        self._audit = audit_entry(200, self._stored)
        self._audit_log = current_app.extensions["openalgo_gtt"].audit

    def after_answer(self, work: Callable[[], None]) -> None:
        after_answer(work)

    def close(self, conn) -> None:
        """The answer (for duplicates) and the audit row, in the GTT's own transaction."""
        self._records.finish(self.record_id, DONE, 200, self._stored, keep_reservation=False, forget_plan=True,
                             conn=conn)
        self._audit_log.write_in(conn, self._audit)

    def close_alone(self) -> None:
        """When the GTT's transaction failed: the answer and the audit row, each on its own.
        Never raises (it runs after the answer)."""
        try:
            self._records.finish(self.record_id, DONE, 200, self._stored, keep_reservation=False, forget_plan=True)
        except Exception:  # noqa: BLE001 - the record stays open; the watcher settles it
            log.exception("could not close request record %s", self.record_id)
        self._audit_log.write(self._audit)


def _idempotency_key(body: dict) -> str | None:
    key = body.get("idempotency_key") or request.headers.get("Idempotency-Key")
    if key is None or key == "":
        return None
    key = str(key).strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiError(400, f"idempotency_key must be 1 to {MAX_KEY_LENGTH} characters")
    return key


def _body_hash(endpoint: str, body: dict) -> str:
    canonical = {k: v for k, v in body.items() if k not in NOT_IN_DEDUPE_HASH}
    text = json.dumps([endpoint, canonical], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _definitive(status: int) -> bool:
    return status < 500 and status not in (409, 429)


def _stale(snapshot: Snapshot, stale_after: timedelta) -> bool:
    return snapshot.updated_at < utcnow() - stale_after or holder_alive(snapshot.holder) is False


def _replay(snapshot: Snapshot) -> tuple[dict, int]:
    body = copy.deepcopy(snapshot.response_body) or {}
    if isinstance(body, dict):
        body["original_request_id"] = body.pop("request_id", None)
        body["duplicate"] = True
    g.duplicate_of = snapshot.id
    return body, snapshot.response_status or 200


def once(endpoint: str, caller_name: str, body: dict, action: Callable[[Attempt], object],
         *, dedupe: bool, render: Callable[[object], dict] | None = None) -> tuple[dict, int]:
    """Run `action` at most once per key; returns (answer body, HTTP status).

    With `render`, the action is a place: it claims the key itself when it writes its intent
    (raising AlreadyClaimed when the key is taken), returns a result that `render` turns into
    the answer, and closes the record (and writes the audit row) after the answer, in the
    transaction that records the GTT.
    Without, the key is claimed before the action runs and the action returns the answer."""
    gateway = current_app.extensions["openalgo_gtt"]
    settings = gateway.settings
    explicit = _idempotency_key(body)
    if explicit is not None:
        idem_key, ttl = f"key:{explicit}", IDEMPOTENCY_TTL
    elif dedupe and settings.dedupe_window_seconds > 0:
        idem_key, ttl = f"body:{_body_hash(endpoint, body)}", timedelta(seconds=settings.dedupe_window_seconds)
    else:
        idem_key, ttl = f"request:{g.request_id}", timedelta(seconds=settings.dedupe_window_seconds or 60)
    key = (caller_name, idem_key, endpoint, ttl)

    records: RequestRecords = gateway.request_records
    deadline = time.monotonic() + WAIT_FOR_FIRST
    snapshot = None
    while True:
        if snapshot is None:
            if render is not None:
                try:
                    return _run(Attempt(records, key, render), action, render, records)
                except AlreadyClaimed:
                    snapshot = records.existing(caller_name, idem_key)
                    continue
            snapshot, created = records.claim(caller_name, idem_key, endpoint, ttl)
            if created:
                return _run(Attempt(records, key, render, snapshot), action, render, records)
        if snapshot.state == DONE:
            return _replay(snapshot)
        if snapshot.state == FAULT or (snapshot.state == PENDING and _stale(snapshot, gateway.stale_after)):
            if records.take_over(snapshot):
                return _run(Attempt(records, key, render, snapshot, retry=True), action, render, records)
        elif time.monotonic() > deadline:
            raise ApiError(409, "the same request is still being processed; try again in a few seconds")
        else:
            time.sleep(0.05)
        snapshot = records.existing(caller_name, idem_key)


def _run(attempt: Attempt, action, render, records: RequestRecords) -> tuple[dict, int]:
    try:
        result = action(attempt)
    except AlreadyClaimed:
        raise
    except Exception as exc:
        if attempt.record_id is None:
            raise  # refused before it claimed anything: nothing to record, nothing to replay
        status, envelope = error_status_and_body(exc)
        if _definitive(status):
            records.finish(attempt.record_id, DONE, status, {**envelope, "request_id": g.request_id},
                           keep_reservation=False, forget_plan=True)
        else:
            # Unknown or transient: keep the plan (and a reservation the service did not give
            # back) so the retry, or the watcher, can find out what the broker holds.
            keep = attempt.keeps_reservation and getattr(exc, "may_have_reached", False)
            records.finish(attempt.record_id, FAULT, status, None, keep_reservation=keep, forget_plan=not keep)
        raise
    if attempt.answer is not None:
        g.audit_written = True  # written with the record of the GTT, after the answer
        return attempt.answer, 200
    answer = render(result) if render is not None else result
    records.finish(attempt.record_id, DONE, 200, {**answer, "request_id": g.request_id},
                   keep_reservation=False, forget_plan=True)
    return answer, 200
