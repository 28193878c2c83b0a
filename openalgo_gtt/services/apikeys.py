"""API keys: created random, shown once, stored only as argon2 hashes of key + pepper.

Verification costs one argon2 check per process for a good key; after that a cache keyed by
SHA-256 of the key answers in microseconds. A bounded negative cache stops a flood of bad keys
from burning CPU on argon2. Revocation is checked against the database (a primary-key read) at
most once every REVOCATION_CHECK_SECONDS per key and process: a key revoked from the command line
stops working within a second in every worker process, and at once in the process that revoked
it, while a busy caller does not pay a database read on every request.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.store.models import ApiKey

KEY_BYTES = 32
NAME_MAX = 64
NEGATIVE_CACHE_SIZE = 10_000
NEGATIVE_CACHE_SECONDS = 300.0
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most once a minute per key
REVOCATION_CHECK_SECONDS = 1.0


class ApiKeyError(ValueError):
    """A create or revoke that cannot be done (duplicate or unknown name)."""


@dataclass(frozen=True)
class Caller:
    key_id: int
    name: str


@dataclass(frozen=True)
class KeyInfo:
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _fingerprint(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeyService:
    def __init__(self, sessions: sessionmaker[Session], pepper: str, hasher: PasswordHasher | None = None,
                 revocation_check_seconds: float = REVOCATION_CHECK_SECONDS, clock=time.monotonic):
        self._sessions = sessions
        self._revocation_check_seconds = revocation_check_seconds
        self._clock = clock
        self._checked_at: dict[int, float] = {}  # key id -> when it was last seen unrevoked
        self._pepper = pepper
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._known: dict[bytes, Caller] = {}
        self._rejected: OrderedDict[bytes, float] = OrderedDict()
        self._last_used_written: dict[int, datetime] = {}
        self._in_flight: dict[bytes, threading.Lock] = {}

    # -- administration (the command line) ------------------------------------------------

    def create(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise ApiKeyError(f"a key name must be 1 to {NAME_MAX} characters")
        key = secrets.token_hex(KEY_BYTES)
        record = ApiKey(name=name, key_hash=self._hasher.hash(key + self._pepper), created_at=utcnow())
        with self._sessions.begin() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise ApiKeyError(f"a key named {name!r} already exists")
            session.add(record)
            try:
                session.flush()
            except IntegrityError:
                raise ApiKeyError(f"a key named {name!r} already exists") from None
        return key

    def list(self) -> list[KeyInfo]:
        with self._sessions() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
            return [KeyInfo(r.name, r.created_at, r.last_used_at, r.revoked_at) for r in rows]

    def revoke(self, name: str) -> None:
        with self._sessions.begin() as session:
            done = session.execute(
                update(ApiKey)
                .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            ).rowcount
        if not done:
            raise ApiKeyError(f"no active key named {name!r}")
        with self._lock:
            self._known = {fp: c for fp, c in self._known.items() if c.name != name}
            self._checked_at.clear()

    # -- the request path ------------------------------------------------------------------

    def verify(self, key: object) -> Caller | None:
        """The caller a key belongs to, or None for a missing, wrong or revoked key."""
        if not isinstance(key, str) or not key or len(key) > 256:
            return None
        fingerprint = _fingerprint(key)
        with self._lock:
            caller = self._known.get(fingerprint)
            if caller is None and self._recently_rejected(fingerprint):
                return None
        if caller is not None:
            return caller if self._still_active(caller) else self._forget(fingerprint)
        # Single flight: a burst of requests with a new key (09:15, a cold cache) pays for one
        # argon2 check, not one per request.
        with self._lock:
            flight = self._in_flight.setdefault(fingerprint, threading.Lock())
        with flight:
            with self._lock:
                caller = self._known.get(fingerprint)
                if caller is None and self._recently_rejected(fingerprint):
                    return None
            if caller is not None:
                return caller
            caller = self._verify_with_argon2(key)
            self._remember(fingerprint, caller)
        with self._lock:
            self._in_flight.pop(fingerprint, None)
        return caller

    def _remember(self, fingerprint: bytes, caller: Caller | None) -> None:
        with self._lock:
            if caller is None:
                self._rejected[fingerprint] = time.monotonic()
                while len(self._rejected) > NEGATIVE_CACHE_SIZE:
                    self._rejected.popitem(last=False)
            else:
                self._known[fingerprint] = caller

    def _recently_rejected(self, fingerprint: bytes) -> bool:
        rejected_at = self._rejected.get(fingerprint)
        if rejected_at is None:
            return False
        if time.monotonic() - rejected_at > NEGATIVE_CACHE_SECONDS:
            del self._rejected[fingerprint]
            return False
        return True

    def _forget(self, fingerprint: bytes) -> None:
        with self._lock:
            self._known.pop(fingerprint, None)
        return None

    def _still_active(self, caller: Caller) -> bool:
        checked_at = self._checked_at.get(caller.key_id)
        if checked_at is not None and self._clock() - checked_at < self._revocation_check_seconds:
            return True
        seen_at = self._clock()
        now = utcnow()
        with self._sessions() as session:
            row = session.execute(
                select(ApiKey.revoked_at, ApiKey.last_used_at).where(ApiKey.id == caller.key_id)
            ).first()
            if row is None or row.revoked_at is not None:
                self._checked_at.pop(caller.key_id, None)
                return False
            self._touch(session, caller.key_id, now)
        self._checked_at[caller.key_id] = seen_at
        return True

    def _touch(self, session: Session, key_id: int, now: datetime) -> None:
        written = self._last_used_written.get(key_id)
        if written is not None and now - written < LAST_USED_RESOLUTION:
            return
        self._last_used_written[key_id] = now
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
        session.commit()

    def _verify_with_argon2(self, key: str) -> Caller | None:
        # A trader has a handful of keys: trying each active hash is cheap, and it keeps the
        # database free of anything derived from a key but its salted argon2 hash.
        seen_at = self._clock()
        with self._sessions() as session:
            candidates = session.execute(
                select(ApiKey.id, ApiKey.name, ApiKey.key_hash).where(ApiKey.revoked_at.is_(None))
            ).all()
        for key_id, name, key_hash in candidates:
            try:
                self._hasher.verify(key_hash, key + self._pepper)
            except (VerificationError, InvalidHashError):
                continue
            caller = Caller(key_id, name)
            self._checked_at[key_id] = seen_at  # the query above saw it unrevoked
            with self._sessions() as session:
                self._touch(session, key_id, utcnow())
            return caller
        return None
