"""Signing a browser in to the trader's page (api/dashboard) with an API key.

The key is checked once, at sign-in, by the API's own verifier (services/apikeys.py); the browser
then holds a random session token in a cookie, and the database only its SHA-256 hash
(store/page_sessions.py), so a session really ends: at sign-out (the row is deleted), after
DASHBOARD_SESSION_HOURS, or as soon as its API key is revoked (checked as often as the API
checks a cached key). The key itself is never kept, in the cookie, the row or the page.

Every form and request that acts carries a CSRF token: an HMAC of the session token under a
secret derived from the pepper. It is bound to the session and never stored.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.services.apikeys import ApiKeyService, Caller
from openalgo_gtt.store.page_sessions import PageSessionRows

TOKEN_BYTES = 32
_CSRF_LABEL = b"openalgo-gtt page csrf"


@dataclass(frozen=True)
class PageSession:
    """A signed-in browser: who it acts as, and until when."""

    caller: Caller
    expires_at: datetime
    csrf_token: str


@dataclass(frozen=True)
class StartedSession:
    token: str  # for the cookie only
    session: PageSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class PageSessions:
    def __init__(self, rows: PageSessionRows, api_keys: ApiKeyService, pepper: str, hours: float,
                 clock: Callable[[], datetime] = utcnow):
        self._rows = rows
        self._api_keys = api_keys
        self._csrf_secret = hmac.new(pepper.encode(), _CSRF_LABEL, hashlib.sha256).digest()
        self.lifetime = timedelta(hours=hours)
        self._clock = clock

    def csrf_for(self, token: str) -> str:
        return hmac.new(self._csrf_secret, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def start(self, caller: Caller) -> StartedSession:
        """A new session for a caller whose key was just verified; expired rows are swept here."""
        now = self._clock()
        self._rows.purge_expired(now)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires_at = now + self.lifetime
        self._rows.add(token_hash(token), caller.key_id, caller.name, now, expires_at)
        return StartedSession(token, PageSession(caller, expires_at, self.csrf_for(token)))

    def resolve(self, token: str | None) -> PageSession | None:
        """The live session a cookie's token names, or None (unknown, ended, expired, or its
        key revoked: the row is then deleted)."""
        if not token or len(token) > 128:
            return None
        hashed = token_hash(token)
        stored = self._rows.get(hashed)
        if stored is None:
            return None
        caller = Caller(stored.api_key_id, stored.api_key_name)
        if self._clock() >= stored.expires_at or not self._api_keys.still_active(caller):
            self._rows.delete(hashed)
            return None
        return PageSession(caller, stored.expires_at, self.csrf_for(token))

    def csrf_matches(self, token: str, presented: object) -> bool:
        return isinstance(presented, str) and hmac.compare_digest(self.csrf_for(token), presented)

    def end(self, token: str | None) -> None:
        if token and len(token) <= 128:
            self._rows.delete(token_hash(token))
