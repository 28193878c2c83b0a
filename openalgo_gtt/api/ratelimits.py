"""Caller rate limits and the throttle on failed API-key attempts, both moving windows of the
`limits` library.

- Every request except the health check and the docs counts against its caller: the API key
  it presents when that key is valid (read by auth.presented_key, counted under an HMAC of the
  key, never the key), else its client address. A made-up key is not a caller: random keys all
  count against their address. Behind ngrok every caller has the same address, hence the key.
- After `FAILED_KEY_LIMIT` wrong keys from one address, further requests from it get 429 unless
  their key is valid: what is wrong is throttled, never who is right. The key is checked first,
  and that check is cheap for every wrong key (services/apikeys.py: an unknown identifier costs
  an indexed read, a known one a single argon2 verification); the one check that can cost more
  (an old-format key tried against the old keys not used since the upgrade) is not run for a
  throttled address unless the key was marked good before.

A refusal is the API's error envelope with HTTP 429, `retry_after` (seconds) in the body and a
Retry-After header, and leaves exactly one audit record like any other request. Counts live in
`RATE_LIMIT_STORAGE_URI` (memory:// per process, or Redis shared by every worker); when that
storage fails, the limits fall back to per-process memory and the throttle fails open.
The counting itself is services/abuse.py's (CallerLimits, FailedKeyThrottle); this module
decides who the caller is and answers refusals.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, g, request

from openalgo_gtt.api.auth import api_keys, key_check_failed, presented_key, verify_key
from openalgo_gtt.api.errors import INVALID_APIKEY, ApiError
from openalgo_gtt.api.lifecycle import SECRET_PATH_PREFIXES, UNAUDITED_PREFIXES, context
from openalgo_gtt.api.page_session import current_session
from openalgo_gtt.services.abuse import (
    CallerLimits, FailedKeyThrottle, SecurityPolicy, make_storage, path_is_under,
)
from openalgo_gtt.services.apikeys import Caller

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
        # Order matters: this runs after the life cycle's request id (api.register installs it
        # first); the throttle answers before the limits so refused guesses cost no limit storage.
        app.before_request(self._admit)
        app.after_request(self._finish)
        app.extensions[EXTENSION] = self

    def _admit(self) -> None:
        if _exempt() or (self.limits is None and self.throttle is None):
            return
        key = presented_key()
        # A key this process has verified is never throttled: no storage round trip for it. A
        # signed-in page presents no key: its session's key is the caller.
        session = current_session() if key is None else None
        caller = session.caller if session is not None else api_keys().cached(key) if key is not None else None
        throttled_for = None
        if caller is None:
            if self.throttle is not None and not path_is_under(request.path, KEYLESS_PREFIXES):
                throttled_for = self.throttle.retry_after(_address())
            caller = self._caller(key, throttled_for is not None)
        if throttled_for is not None and caller is None:
            g.retry_after = throttled_for
            raise RateLimitRefused(
                f"Too many wrong API keys from this address ({self.throttle.limit}); retry after {throttled_for} s",
                throttled_for,
            )
        if self.limits is None:
            return
        if caller is None:
            who = f"addr:{_address()}"
        else:  # a page session counts under its key's row id (it never holds the key itself)
            who = f"key:{self.policy.fingerprint(key)}" if key is not None else f"key-id:{caller.key_id}"
        breach = self.limits.breach(who)
        if breach is None:
            return
        g.retry_after = breach.retry_after  # the Retry-After header (see _finish)
        what = "this API key" if caller is not None else "this address"
        raise RateLimitRefused(f"Rate limit exceeded for {what} ({breach.limit}); retry after {breach.retry_after} s",
                               breach.retry_after)

    def _caller(self, key: str | None, throttled: bool) -> Caller | None:
        """Who the presented key belongs to, checked as the view will check it (the view then
        finds it in the key cache), or None for no key or a wrong one."""
        if key is None:
            return None
        old_key_pass = True
        if throttled:  # a key that authenticated before (marked in the storage) may still try the old keys
            old_key_pass = self.throttle.is_known_good(self.policy.fingerprint(key))
        return verify_key(key, old_key_pass=old_key_pass)

    def _finish(self, response: Response) -> Response:
        if response.status_code == 429 and g.get("retry_after"):
            response.headers["Retry-After"] = str(g.retry_after)
        if self.throttle is not None and not _exempt():
            ctx = context()
            # Every wrong key counts, whatever else was wrong with the request (a sign-in form
            # without its token still checked the key): what was checked, not what was answered.
            if key_check_failed() or (response.status_code == 403 and ctx.error == INVALID_APIKEY):
                self.throttle.note_failure(_address())
            elif ctx.api_key_name and presented_key():
                self.throttle.note_good(self.policy.fingerprint(presented_key()))
        return response


def install_rate_limits(app: Flask, policy: SecurityPolicy) -> RateLimits:
    return RateLimits(app, policy)
