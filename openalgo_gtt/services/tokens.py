"""The Upstox access token: where it comes from and when it dies.

Upstox expires every access token at 03:30 IST. A token comes from, highest priority first:
`keys.json`, the ACCESS_TOKEN environment variable (both resolved by config/sources.py into
`settings.access_token`), then the newest login stored in `upstox_tokens` (browser, terminal or
the Upstox app's notifier). A stored login's expiry is known (the next 03:30 IST after it was
issued), so once it has passed `TokenProvider.current()` raises `TokenExpired` before any HTTP is
sent: the caller is told to log in again instead of collecting Upstox's 401s.

Kite's tokens follow the same path with their own policy (`KITE`): KITE_ACCESS_TOKEN or
`kite_access_token` in keys.json, else the stored Kite login, which expires at 06:00 IST the next
day.

The stored login is read through `store.logins.TokenStore` (which keeps it encrypted under a key
derived from API_KEY_PEPPER, see domain/login.py); this module holds no SQL.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import time as monotonic_time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from openalgo_gtt.store.db import Sessions

from openalgo_gtt.brokers.base import BrokerCall, BrokerCallObserver
from openalgo_gtt.brokers.errors import TokenRejected
from openalgo_gtt.domain.clock import IST, as_utc, ist_text, utcnow
from openalgo_gtt.domain.login import StoredToken
from openalgo_gtt.store.logins import TokenStore

Clock = Callable[[], datetime]

EXPIRY_TIME_IST = time(3, 30)
LOGIN_HINT = "log in again at /upstox/login or with python run.py login"
EXPIRED_MESSAGE = f"Upstox access token expired at 03:30 IST: {LOGIN_HINT}"
NO_TOKEN_MESSAGE = (
    "No Upstox access token: log in at /upstox/login or with python run.py login "
    "(or set ACCESS_TOKEN / write keys.json)"
)

@dataclass(frozen=True)
class TokenPolicy:
    """One broker's token rules: when its tokens expire and how the trader is told."""

    broker: str  # "upstox" | "kite": also which stored logins are this broker's
    expiry_time: time  # IST
    expired_message: str
    no_token_message: str
    label: str = "Upstox"  # the broker's name in messages
    login_hint: str = LOGIN_HINT


UPSTOX = TokenPolicy("upstox", EXPIRY_TIME_IST, EXPIRED_MESSAGE, NO_TOKEN_MESSAGE)
KITE_LOGIN_HINT = "log in again at /kite/login or with python run.py login"
KITE = TokenPolicy(
    "kite", time(6, 0), f"Kite access token expired at 06:00 IST: {KITE_LOGIN_HINT}",
    "No Kite access token: log in at /kite/login or with python run.py login "
    "(or set KITE_ACCESS_TOKEN / write kite_access_token in keys.json)", label="Kite", login_hint=KITE_LOGIN_HINT)


class NoToken(TokenRejected):
    """No access token is configured and no login is stored. Nothing was sent to Upstox."""

    def __init__(self, message: str = NO_TOKEN_MESSAGE) -> None:
        super().__init__(message, may_have_reached=False)


class TokenExpired(TokenRejected):
    """The stored login's token is past its 03:30 IST expiry. Nothing was sent to Upstox."""

    def __init__(self, expired_at: datetime, message: str = EXPIRED_MESSAGE) -> None:
        super().__init__(message, may_have_reached=False)
        self.expired_at = expired_at


# ----- time ----------------------------------------------------------------------------------


def next_expiry(issued_at: datetime, at: time = EXPIRY_TIME_IST) -> datetime:
    """The first `at` IST (03:30 for Upstox, 06:00 for Kite) strictly after `issued_at`, in UTC:
    02:00 IST expires the same day, 10:00 IST (or exactly 03:30) the next day."""
    local = as_utc(issued_at).astimezone(IST)
    candidate = datetime.combine(local.date(), at, tzinfo=IST)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=IST)
    return candidate.astimezone(timezone.utc)


# ----- comparing secrets ------------------------------------------------------------------


def secrets_match(candidate: str, expected: str) -> bool:
    return hmac.compare_digest(candidate.encode("utf-8", "replace"), expected.encode("utf-8"))


def fingerprint(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


# ----- the provider --------------------------------------------------------------------------


class TokenProvider:
    """The effective Upstox access token. `current` is what UpstoxBroker calls before each request.

    `configured_token` is settings.access_token (keys.json or the environment, already resolved by
    config/sources.py); when set it always wins and its expiry is unknown. Otherwise the newest stored
    login is used, re-read from the database at most every `cache_seconds` (so a login completed
    by another process is picked up) and at once after a save in this process.
    """

    def __init__(self, store: TokenStore, *, configured_token: str | None = None,
                 configured_source: str | None = None, now: Clock = utcnow, cache_seconds: float = 2.0,
                 policy: TokenPolicy = UPSTOX) -> None:
        self.store = store
        self.policy = policy
        self.now = now
        self._configured = configured_token or None
        self._configured_source = (configured_source or "environment") if self._configured else None
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[int, float, StoredToken | None] | None = None  # (generation, read at, token)
        self._last_handed: bytes | None = None  # fingerprint of the token current() last returned
        self._rejected: bytes | None = None  # fingerprint of a token Upstox answered UDAPI100050 to
        # Told once per token Upstox rejects (the gateway tells the trader: services/token_alerts.py).
        self.on_rejected: Callable[[], None] | None = None

    @classmethod
    def from_settings(cls, settings, sessions: Sessions, *, now: Clock = utcnow,
                      cache_seconds: float = 2.0) -> TokenProvider:
        if settings.broker == "kite":
            return cls(TokenStore(sessions, settings.api_key_pepper, broker="kite"),
                       configured_token=settings.kite_access_token, configured_source=settings.kite_access_token_source,
                       now=now, cache_seconds=cache_seconds, policy=KITE)
        return cls(TokenStore(sessions, settings.api_key_pepper), configured_token=settings.access_token,
                   configured_source=settings.access_token_source, now=now, cache_seconds=cache_seconds)

    @property
    def configured_source(self) -> str | None:
        """"keys.json" or "environment" when a configured token overrides any stored login."""
        return self._configured_source

    def current(self) -> str:
        """The token to send, or NoToken / TokenExpired (raised before any HTTP)."""
        if self._configured:
            token = self._configured
        else:
            stored = self._stored()
            if stored is None:
                raise NoToken(self.policy.no_token_message)
            if self._now() >= stored.expires_at:
                raise TokenExpired(stored.expires_at, self.policy.expired_message)
            token = stored.access_token
        self._last_handed = fingerprint(token)
        return token

    def known_expiry(self) -> datetime | None:
        """When the token in use expires, when that is known (a stored login); None for a
        configured token (keys.json, ACCESS_TOKEN) or none at all."""
        if self._configured:
            return None
        stored = self._stored()
        return None if stored is None else as_utc(stored.expires_at)

    def describe(self) -> dict:
        """For /api/health; never the token itself."""
        if self._configured:
            state = "expired" if self._rejected == fingerprint(self._configured) else "valid"
            return {"token": state, "token_source": self._configured_source, "token_expires_at": None}
        stored = self._stored()
        if stored is None:
            return {"token": "missing", "token_source": None, "token_expires_at": None}
        expired = self._now() >= stored.expires_at or self._rejected == fingerprint(stored.access_token)
        return {"token": "expired" if expired else "valid", "token_source": "login",
                "token_expires_at": ist_text(stored.expires_at)}

    # -- what Upstox said about the token last ----------------------------------------------

    def observe(self, call: BrokerCall) -> None:
        """A broker call observer: remembers whether Upstox rejected the token last used."""
        rejected = call.status == 401 or (call.error or "").startswith("TokenRejected")
        if rejected:
            newly = self._rejected != self._last_handed
            self._rejected = self._last_handed
            if newly and self.on_rejected is not None:
                self.on_rejected()
        elif (call.error is None and call.status is not None and 200 <= call.status < 300
              and self._rejected is not None and self._rejected == self._last_handed):
            self._rejected = None  # Upstox accepted it again

    def observing(self, *observers: BrokerCallObserver | None) -> BrokerCallObserver:
        """One observer that feeds `observers` (the audit's) and then this provider."""
        chain: Iterable[BrokerCallObserver] = [o for o in observers if o is not None]

        def observe_all(call: BrokerCall) -> None:
            for observer in chain:
                observer(call)
            self.observe(call)

        return observe_all

    # -- internals ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return as_utc(self.now())

    def _stored(self) -> StoredToken | None:
        with self._lock:
            cached = self._cached
            fresh = (
                cached is not None
                and cached[0] == self.store.generation
                and monotonic_time.monotonic() - cached[1] < self._cache_seconds
            )
            if fresh:
                return cached[2]
        generation = self.store.generation  # read first: a save racing this read invalidates it
        stored = self.store.latest()
        with self._lock:
            self._cached = (generation, monotonic_time.monotonic(), stored)
        return stored
