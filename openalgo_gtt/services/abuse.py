"""Abuse controls that need no web framework: the policy built from the Settings (whose parsers
and defaults live in config/security.py, re-exported here), the fingerprint under which a
caller's key is counted, the address allow-list, the per-caller rate limits and the per-address
throttle on failed API-key attempts.

The limits and the throttle count in a `limits` storage: `memory://` in one process, or Redis
(`RATE_LIMIT_STORAGE_URI=redis://...`) so every worker and host shares the counts. Nothing
derived from a key reaches the storage but an HMAC of it under a secret derived from the pepper.
Every storage failure is logged and fails open: a Redis outage must not stop trading.

The caller limits call `limits` directly rather than through Flask-Limiter: the extension's
per-request machinery (limit lists, scopes, header bookkeeping) cost 0.37 ms of every request at
a trader's pace on the benchmark machine, for one application-wide limit per caller; a direct
check costs about a tenth of that (bench/profile_request.py).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlparse

from limits import RateLimitItem, parse, parse_many
from limits.storage import Storage
from limits.strategies import MovingWindowRateLimiter

from openalgo_gtt.config.security import (  # noqa: F401 - the parsers and defaults live with the Settings
    DEFAULT_FAILED_KEY_LIMIT,
    DEFAULT_RATE_LIMIT,
    DEFAULT_STORAGE_URI,
    MAX_TRUSTED_PROXIES,
    parse_allowed_ips,
    parse_bool,
    parse_rate_limit,
    parse_storage_uri,
    parse_trusted_proxies,
)
from openalgo_gtt.rate_storage import storage_for

log = logging.getLogger(__name__)

# How long a key that authenticated stays known-good (exempt from the throttle): long enough to
# cover a long weekend without alerts. It only exempts from the throttle; the key is still checked.
GOOD_KEY_TTL_SECONDS = 30 * 24 * 3600
GOOD_KEY_REFRESH_SECONDS = 600  # a process re-marks a good key in the storage at most this often
GOOD_KEY_CACHE_SIZE = 1024


def _networks(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return parse_allowed_ips(value)
    return tuple(str(item) for item in value or ())


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecurityPolicy:
    """What install_security() enforces. Built from the Settings; tests build one directly."""

    rate_limit: str = DEFAULT_RATE_LIMIT
    rate_limit_enabled: bool = True  # also switches the failed-key throttle
    storage_uri: str = DEFAULT_STORAGE_URI
    failed_key_limit: str = DEFAULT_FAILED_KEY_LIMIT
    trusted_proxies: int = 0
    allowed_ips: tuple[str, ...] = ()
    key_prefix: str = ""  # storage namespace; derived from the pepper when empty
    secret: bytes = b""  # HMAC secret for key fingerprints; derived from the pepper when empty

    @classmethod
    def from_settings(cls, settings, **overrides) -> SecurityPolicy:
        """The policy for `settings`; settings the Settings object lacks take their defaults."""
        pepper = getattr(settings, "api_key_pepper", "") or ""
        secret = hmac.new(pepper.encode(), b"openalgo-gtt rate limits", hashlib.sha256).digest()
        values = {
            "rate_limit": getattr(settings, "rate_limit", DEFAULT_RATE_LIMIT),
            "rate_limit_enabled": getattr(settings, "rate_limit_enabled", True),
            "storage_uri": getattr(settings, "rate_limit_storage_uri", DEFAULT_STORAGE_URI),
            "failed_key_limit": getattr(settings, "failed_key_limit", DEFAULT_FAILED_KEY_LIMIT),
            "trusted_proxies": getattr(settings, "trusted_proxies", 0),
            "allowed_ips": _networks(getattr(settings, "allowed_ips", ())),
            # Two deployments sharing one Redis have different peppers, so different namespaces;
            # the workers of one deployment share theirs. (rate_limit_key_prefix: tests only.)
            "key_prefix": getattr(settings, "rate_limit_key_prefix", "")
            or "openalgo-gtt-" + secret.hex()[:8],
            "secret": secret,
        }
        values.update(overrides)
        return cls(**values)

    def fingerprint(self, key: str) -> str:
        """What a key is counted under: an HMAC, never the key (the storage may be Redis)."""
        return hmac.new(self.secret, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


class AddressFilter:
    """ALLOWED_IPS: when any are configured, only those addresses and networks get in."""

    def __init__(self, allowed: Iterable[str]):
        self.networks = tuple(ipaddress.ip_network(item, strict=False) for item in allowed)

    @property
    def active(self) -> bool:
        return bool(self.networks)

    def allows(self, address: str | None) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


def path_is_under(path: str, prefixes: tuple[str, ...]) -> bool:
    """`path` is one of `prefixes` or below one ("/api/docs" covers /api/docs/x, not /api/docsx)."""
    return any(path == p or path.startswith(p if p.endswith("/") else p + "/") for p in prefixes)


def storage_options(uri: str) -> dict:
    if urlparse(uri).scheme.startswith(("redis", "valkey")):
        # A Redis that stops answering must cost a request at most a second, then fail open.
        return {"socket_connect_timeout": 1, "socket_timeout": 1}
    return {}


def make_storage(uri: str) -> Storage:
    return storage_for(uri, **storage_options(uri))


def seconds_until(reset_at: float, now: float | None = None) -> int:
    """Whole seconds (at least 1) until `reset_at`, for Retry-After."""
    return max(1, math.ceil(reset_at - (time.time() if now is None else now)))


class StorageUnavailable(Exception):
    """The throttle's storage failed recently; callers fail open."""


class StoragePause:
    """After a storage failure, leave the storage alone for `seconds`, so a Redis that stops
    answering costs one request a timeout, not every request."""

    def __init__(self, who: str, seconds: float):
        self._who = who
        self.seconds = seconds
        self._lock = threading.Lock()
        self._until = 0.0

    @property
    def active(self) -> bool:
        return time.monotonic() < self._until

    def start(self, what: str, exc: Exception, meanwhile: str) -> None:
        """The storage failed at `what`; `meanwhile` says what the caller does instead."""
        with self._lock:
            if self.active:
                return
            self._until = time.monotonic() + self.seconds
        log.warning("%s: storage unavailable (%s: %s); %s for %.0f s", self._who, what, exc, meanwhile,
                    self.seconds)


class LimitBreach(NamedTuple):
    limit: RateLimitItem  # the first full window
    retry_after: int  # whole seconds until it has room


class CallerLimits:
    """`RATE_LIMIT` per caller, in the configured storage. When the storage fails (Redis down),
    counting goes on in this process's memory for STORAGE_PAUSE seconds before the storage is
    tried again: a broken storage never refuses trading, and never costs every request a timeout."""

    STORAGE_PAUSE = 30.0

    def __init__(self, limit: str, storage_uri: str, prefix: str):
        self._items: list[RateLimitItem] = parse_many(limit)
        self._shared = MovingWindowRateLimiter(make_storage(storage_uri))
        self._memory = MovingWindowRateLimiter(storage_for("memory://"))
        self._prefix = f"{prefix}/caller"
        self._pause = StoragePause("caller rate limits", self.STORAGE_PAUSE)

    def breach(self, caller: str) -> LimitBreach | None:
        """Count this request against `caller`: None when it may go on, else the window that
        is full and when it has room again."""
        key = f"{self._prefix}/{caller}"
        for item in self._items:
            limiter = self._memory if self._pause.active else self._shared
            try:
                allowed = limiter.hit(item, key)
            except Exception as exc:  # noqa: BLE001 - any storage fault: count in memory instead
                self._pause.start("hit", exc, "counting in memory")
                limiter = self._memory
                allowed = limiter.hit(item, key)
            if not allowed:
                return LimitBreach(item, seconds_until(self._window_reset(limiter, item, key)))
        return None

    @staticmethod
    def _window_reset(limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str) -> float:
        try:
            return limiter.get_window_stats(item, key).reset_time
        except Exception:  # noqa: BLE001 - the storage failed just now: the whole period
            return time.time() + item.get_expiry()


class FailedKeyThrottle:
    """After `limit` wrong API keys from one address (e.g. 20 per minute), further requests
    from it without a known-good key are refused before any key check (no argon2 work) until
    the window has room again. A key that authenticated recently is known-good (in this process,
    and across processes through the storage) and is never refused.

    Every storage failure fails open, and the storage is then left alone for STORAGE_PAUSE
    seconds, so a Redis that stops answering costs one request a timeout, not every request."""

    STORAGE_PAUSE = 30.0

    def __init__(self, storage: Storage, limit: str, prefix: str):
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._limit: RateLimitItem = parse(limit)
        self._prefix = prefix
        self._lock = threading.Lock()
        self._good: OrderedDict[str, float] = OrderedDict()  # fingerprint -> when marked
        self._pause = StoragePause("failed-key throttle", self.STORAGE_PAUSE)

    @property
    def limit(self) -> RateLimitItem:
        return self._limit

    def _call(self, what: str, operation, *args):
        if self._pause.active:
            raise StorageUnavailable(what)
        try:
            return operation(*args)
        except Exception as exc:  # any storage fault
            self._pause.start(what, exc, "failing open")
            raise StorageUnavailable(what) from exc

    def note_failure(self, address: str) -> None:
        try:
            self._call("count", self._limiter.hit, self._limit, self._prefix, "failed-key", address)
        except StorageUnavailable:
            pass

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try a wrong key again, or None when it is not throttled."""
        identifiers = (self._limit, self._prefix, "failed-key", address)
        try:
            if self._call("test", self._limiter.test, *identifiers):
                return None
            reset_at, _ = self._call("window", self._limiter.get_window_stats, *identifiers)
        except StorageUnavailable:
            return None
        return seconds_until(reset_at)

    def _good_key(self, fingerprint: str) -> str:
        return f"{self._prefix}/good-key/{fingerprint}"

    def note_good(self, fingerprint: str) -> None:
        now = time.monotonic()
        with self._lock:
            marked = self._good.get(fingerprint)
            stale = marked is None or now - marked > GOOD_KEY_REFRESH_SECONDS
            if stale:
                self._good[fingerprint] = now
            self._good.move_to_end(fingerprint)
            while len(self._good) > GOOD_KEY_CACHE_SIZE:
                self._good.popitem(last=False)
        if stale:
            try:
                self._call("clear", self._storage.clear, self._good_key(fingerprint))  # restart its TTL
                self._call("mark", self._storage.incr, self._good_key(fingerprint), GOOD_KEY_TTL_SECONDS)
            except StorageUnavailable:
                pass

    def known_good_here(self, fingerprint: str) -> bool:
        """Known-good from this process's memory alone (no storage round trip)."""
        with self._lock:
            marked = self._good.get(fingerprint)
        return marked is not None and time.monotonic() - marked < GOOD_KEY_TTL_SECONDS

    def is_known_good(self, fingerprint: str) -> bool:
        if self.known_good_here(fingerprint):
            return True
        try:
            return self._call("lookup", self._storage.get, self._good_key(fingerprint)) > 0
        except StorageUnavailable:
            return True  # in doubt, never refuse a trader
