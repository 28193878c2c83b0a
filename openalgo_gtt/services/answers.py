"""The OpenAlgo answers of the use cases: the success body of a place or modify, and one error
envelope, `{"status": "error", "message": ...}` with its HTTP status, for every refusal or fault.

They are decided here, in the services, because exactly-once keeps the first definitive answer
and replays it byte for byte to duplicates; the API layer only serialises them.
"""
from __future__ import annotations

from openalgo_gtt.brokers.errors import BrokerError, BrokerTimeout, InputRejected, RateLimited, TokenRejected
from openalgo_gtt.brokers.kite_wire import TOKEN_EXCEPTION as KITE_TOKEN_CODE
from openalgo_gtt.domain.errors import DomainError, GttNotFound, TradeLimitReached
from openalgo_gtt.services.tokens import NoToken, TokenExpired
from openalgo_gtt.store.instruments import UnknownInstrument


class ApiError(Exception):
    """An error the API answers with `status` and a JSON envelope."""

    def __init__(self, status: int, message: str, **details):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


class BadRequest(ApiError):
    def __init__(self, message: str, **details):
        super().__init__(400, message, **details)


class Forbidden(ApiError):
    def __init__(self, message: str = "Invalid openalgo apikey", **details):
        super().__init__(403, message, **details)


INVALID_APIKEY = "Invalid openalgo apikey"

def envelope(message: str, **details) -> dict:
    body = {"status": "error", "message": message}
    body.update({k: v for k, v in details.items() if v is not None})
    return body


TOKEN_REJECTED = "Upstox rejected the access token (UDAPI100050): log in again"


def _broker_error(exc: BrokerError) -> tuple[int, dict]:
    """Broker faults as callers see them. A 5xx only for what a retry can fix."""
    if isinstance(exc, (TokenExpired, NoToken)):  # refused here, before anything was sent to Upstox
        return 502, envelope(exc.message)
    if isinstance(exc, TokenRejected):
        if exc.code == KITE_TOKEN_CODE:  # Kite's words (brokers/kite_wire.py): "... log in again"
            return 502, envelope(exc.message.split(" (", 1)[0], broker_code=exc.code)
        return 502, envelope(TOKEN_REJECTED, broker_code=exc.code or "UDAPI100050")
    if isinstance(exc, InputRejected):
        status = exc.http_status if exc.http_status in (404, 409) else 400
        return status, envelope(f"Broker refused the request: {exc.message}", broker_code=exc.code)
    if isinstance(exc, RateLimited):
        return 429, envelope(f"Broker rate limit: {exc.message}; try again shortly", broker_code=exc.code)
    who = exc.broker if exc.broker and exc.broker != "the broker" else "Upstox"
    if isinstance(exc, BrokerTimeout):
        return 504, envelope(f"{who} did not answer in time: {exc.message}",
                             outcome_unknown=exc.may_have_reached or None)
    return 502, envelope(f"{who} failed: {exc.message}", broker_code=exc.code,
                         outcome_unknown=exc.may_have_reached or None)


def error_status_and_body(exc: BaseException) -> tuple[int, dict]:
    """(HTTP status, JSON body) for any exception; unexpected ones are a plain 500."""
    if isinstance(exc, ApiError):
        return exc.status, envelope(exc.message, **exc.details)
    if isinstance(exc, DomainError):
        return 400, envelope(exc.message, **(exc.details or {}))
    if isinstance(exc, UnknownInstrument):
        return 404, envelope(str(exc), suggestions=exc.suggestions or None)
    if isinstance(exc, GttNotFound):
        return 404, envelope(str(exc))
    if isinstance(exc, TradeLimitReached):
        return 429, envelope(str(exc), trade_count=exc.count, daily_trade_limit=exc.limit)
    if isinstance(exc, BrokerError):
        return _broker_error(exc)
    return 500, envelope("Internal error: the request was not completed; quote the request_id when reporting it")


def placed_answer(placed) -> dict:
    """The success body of a place or modify (a services.place.Placed)."""
    answer = {"status": "success", "trigger_id": placed.trigger_id}
    if placed.trade_count is not None:
        answer["trade_count"] = placed.trade_count
    answer.update(placed.prices)
    if placed.warnings:
        answer["warnings"] = list(placed.warnings)
    return answer


LEGACY_PLACE = "legacy-place"  # the seed engine's /api/gtt/place, as its request records name it


def answer_for(endpoint: str):
    """How a place made through `endpoint` words its success: a duplicate of a place the
    recovery or the watcher settled is answered as the place itself would have been."""
    return seed_answer if endpoint == LEGACY_PLACE else placed_answer


def seed_answer(placed) -> dict:
    """A place as the seed Upstox GTT Engine answered it (its /api/gtt/place route)."""
    answer = {"success": True, "gtt_id": placed.trigger_id, "status": "ACTIVE",
              "trade_count": placed.trade_count, **placed.prices}
    if placed.warnings:
        answer["warnings"] = list(placed.warnings)
    return answer
