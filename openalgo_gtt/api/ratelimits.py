"""Caller rate limits and the throttle on failed API-key attempts, both moving windows of the
`limits` library.

- Every request except the health check and the docs counts against its caller: the API key
  it presents (read as auth.py reads it, counted under an HMAC of the key, never the key), else
  its client address. Behind ngrok every caller has the same address, hence the key.
- After `FAILED_KEY_LIMIT` wrong keys from one address, further requests from it without a
  known-good key get 429 before any key check; a key that authenticated still works.

A refusal is the API's error envelope with HTTP 429, `retry_after` (seconds) in the body and a
Retry-After header, and leaves exactly one audit record like any other request. Counts live in
`RATE_LIMIT_STORAGE_URI` (memory:// per process, or Redis shared by every worker); when that
storage fails, the limits fall back to per-process memory and the throttle fails open.
The counting itself is services/abuse.py's (CallerLimits, FailedKeyThrottle); this module
reads the caller off the request and answers refusals.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from openalgo_gtt.api.body import request_json
from openalgo_gtt.api.errors import INVALID_APIKEY, ApiError
from openalgo_gtt.api.lifecycle import SECRET_PATH_PREFIXES, UNAUDITED_PREFIXES
from openalgo_gtt.services.abuse import (
    CallerLimits, FailedKeyThrottle, SecurityPolicy, make_storage, path_is_under,
)

log = logging.getLogger(__name__)

EXTENSION = "openalgo_gtt_rate_limits"
# Never limited: polled health checks and the interactive documentation (the paths that are not
# audited either).
EXEMPT_PREFIXES = UNAUDITED_PREFIXES
# Callers that cannot present an API key (Upstox's webhooks carry a secret in the path, the
# login callback a one-time state): the failed-key throttle does not apply to them.
KEYLESS_PREFIXES = (*SECRET_PATH_PREFIXES, "/upstox/callback")


class RateLimitRefused(ApiError):
    """429 with `retry_after` seconds in the envelope (and the Retry-After header)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(429, message, retry_after=retry_after)
        self.retry_after = retry_after


def presented_key() -> str | None:
    """The API key the request presents, read as auth.py reads it: the JSON body's `apikey` on
    /api/v1 (OpenAlgo), else an X-API-KEY header, an `apikey` query parameter or the body.
    None when there is none, or the body cannot be read (the view will say why)."""
    if "presented_key" in g:
        return g.presented_key
    key = None
    if not request.path.startswith("/api/v1/"):
        key = request.headers.get("X-API-KEY") or request.args.get("apikey")
    if not key and request.method != "GET":
        try:
            if request.get_data(cache=True).strip():
                key = request_json(request).get("apikey")
        except (ApiError, HTTPException):  # not JSON, or over the size limit
            key = None
    g.presented_key = key if isinstance(key, str) and key.strip() else None
    return g.presented_key


def _exempt() -> bool:
    return path_is_under(request.path, EXEMPT_PREFIXES)


def _address() -> str:
    return request.remote_addr or "unknown"


class RateLimits:
    """The installed limiter and throttle of one app (app.extensions[EXTENSION])."""

    def __init__(self, app: Flask, policy: SecurityPolicy):
        self.policy = policy
        self.enabled = policy.rate_limit_enabled
        # A bad limit fails here, at start, not on the first request.
        self.limits = CallerLimits(policy.rate_limit, policy.storage_uri, policy.key_prefix) if self.enabled else None
        self.throttle = (
            FailedKeyThrottle(make_storage(policy.storage_uri), policy.failed_key_limit, policy.key_prefix)
            if self.enabled else None
        )
        # Order matters: these run after the life cycle's request id (api.register installs it
        # first), the throttle before the limits so refused guesses cost no limit storage.
        app.before_request(self._throttle_wrong_keys)
        app.before_request(self._limit_callers)
        app.after_request(self._finish)
        app.extensions[EXTENSION] = self

    def _caller(self) -> str:
        key = presented_key()
        return f"key:{self.policy.fingerprint(key)}" if key else f"addr:{_address()}"

    def _limit_callers(self) -> None:
        if self.limits is None or _exempt():
            return
        breach = self.limits.breach(self._caller())
        if breach is None:
            return
        g.retry_after = breach.retry_after  # the Retry-After header (see _finish)
        who = "this API key" if presented_key() else "this address"
        raise RateLimitRefused(f"Rate limit exceeded for {who} ({breach.limit}); retry after {breach.retry_after} s",
                               breach.retry_after)

    def _throttle_wrong_keys(self) -> None:
        if self.throttle is None or _exempt() or path_is_under(request.path, KEYLESS_PREFIXES):
            return
        key = presented_key()
        fingerprint = self.policy.fingerprint(key) if key else None
        if fingerprint and self.throttle.known_good_here(fingerprint):
            return
        retry_after = self.throttle.retry_after(_address())
        if retry_after is None or (fingerprint and self.throttle.is_known_good(fingerprint)):
            return
        g.retry_after = retry_after
        g.key_throttled = True
        raise RateLimitRefused(
            f"Too many wrong API keys from this address ({self.throttle.limit}); retry after {retry_after} s",
            retry_after,
        )

    def _finish(self, response: Response) -> Response:
        if response.status_code == 429 and g.get("retry_after"):
            response.headers["Retry-After"] = str(g.retry_after)
        if self.throttle is not None and not _exempt():
            if response.status_code == 403 and g.get("error") == INVALID_APIKEY:
                self.throttle.note_failure(_address())
            elif g.get("api_key_name") and presented_key():
                self.throttle.note_good(self.policy.fingerprint(presented_key()))
        return response


def install_rate_limits(app: Flask, policy: SecurityPolicy) -> RateLimits:
    return RateLimits(app, policy)
