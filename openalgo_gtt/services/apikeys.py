"""API keys: created random, shown once, stored as an argon2 hash of key + pepper and an HMAC.

Key format and what a wrong key costs
-------------------------------------
A key is `<public_id>.<secret>`: 16 hex characters that name its row, a dot, 64 hex characters
of secret (32 random bytes). The public identifier is stored in clear beside the hash (an indexed,
unique column), and so is `lookup_hmac`, HMAC-SHA256 of the whole key under a secret derived
from the pepper: written when the key is made (its plaintext is known then), or at the first
successful argon2 verification of a key made before this was kept. A presented key costs:

- malformed (not a string, empty, over 256 characters, not encodable as UTF-8, or neither key
  shape): nothing but a regular-expression match; no database read, no argon2;
- an unknown or revoked identifier: one indexed read, no argon2;
- a known identifier whose HMAC is recorded: one indexed read and one HMAC, compared in constant
  time. No argon2 at all, right or wrong: wrong secrets on a known identifier, however many and
  from wherever, cost what an unknown identifier costs, and the right key is never queued behind
  them, never throttled with them (issue 25);
- a known identifier whose HMAC is not recorded yet (a key made before, not used since): one
  argon2 verification. At most one runs per identifier at a time, and at most
  IDENTIFIER_FAILURE_LIMIT wrong ones per IDENTIFIER_FAILURE_WINDOW seconds; both are claimed
  atomically before the work starts. A check that finds the identifier busy or over its limit is
  refused at once without argon2 (IdentifierBusy, a 429 with the seconds to wait), not called
  wrong. The first success records the HMAC, and from then on the key is in the case above.

An HMAC is as safe to store as the argon2 hash: the secrets are 32 random bytes, so neither can
be searched, and without the pepper the HMAC cannot even be computed. Keys issued before
identifiers existed (64 hex characters) keep working, found by the same `lookup_hmac` once
recorded at their first successful use. A presented 64-hex key:

- whose HMAC is recorded: one indexed read, no argon2;
- otherwise it is tried against the active old keys not seen since the upgrade ("unseen"), which
  is the residual cost: at most that many argon2 verifications. That number is fixed when the
  database is upgraded (no key without an identifier is ever created again) and only shrinks as
  each old key is used once or revoked; when it is zero a wrong 64-hex key costs no argon2 at
  all. These passes run one at a time in a process (they can never hold more than one core), a
  pass waits at most LEGACY_WAIT_SECONDS for its turn and otherwise answers "busy, retry"
  (KeyCheckBusy, a 503), and the API refuses the pass, not the key, to an address over the
  failed-key throttle. `apikey list` marks these keys `legacy`; rotating them ends the pass.

Every argon2 computation (hash or verify) takes one of ARGON2_SLOTS, a semaphore sized to the
CPU count, so argon2 work cannot oversubscribe the CPU. After the first verification a cache
keyed by the key's HMAC answers in microseconds; a bounded negative cache remembers wrong keys.
Revocation is read from the database at most once every REVOCATION_CHECK_SECONDS per key and
process: a revoked key stops working within a second in every process, at once in its own.

The pepper check: the database keeps HMAC(pepper, "openalgo-gtt pepper check") in a one-row
table (store/api_keys.py). `create` refuses to make a key under a pepper that does not match it
(PepperMismatch) and the server refuses to start (check_pepper), so a command run with another
pepper never prints a key the server cannot verify.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from openalgo_gtt.store.db import Sessions

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.services.identifier_gate import IdentifierGate
from openalgo_gtt.store.api_keys import ApiKeyStore, DuplicateKey, KeyInfo, StoredKey

__all__ = ["ApiKeyError", "ApiKeyService", "Caller", "IdentifierBusy", "KeyCheckBusy", "KeyInfo", "PepperMismatch",
           "PepperUnproven", "key_identifier", "pepper_check_value"]

PUBLIC_ID_BYTES = 8  # 16 hex characters
SECRET_BYTES = 32  # 64 hex characters
MAX_KEY_LENGTH = 256
NAME_MAX = 64
NEGATIVE_CACHE_SIZE = 10_000
NEGATIVE_CACHE_SECONDS = 300.0
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most once a minute per key
REVOCATION_CHECK_SECONDS = 1.0
IDENTIFIER_FAILURE_LIMIT = 10  # wrong secrets per identifier ...
IDENTIFIER_FAILURE_WINDOW = 60.0  # ... per this many seconds, before it is refused without argon2
LEGACY_WAIT_SECONDS = 2.0

_NEW_KEY = re.compile(rf"([0-9a-f]{{{2 * PUBLIC_ID_BYTES}}})\.[0-9a-f]{{{2 * SECRET_BYTES}}}")
_LEGACY_KEY = re.compile(r"[0-9a-f]{64}")
_PEPPER_CHECK = b"openalgo-gtt pepper check"
_LEGACY_LOOKUP = b"openalgo-gtt legacy key lookup"

# Shared by every service in the process: the CPU is.
ARGON2_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


class ApiKeyError(ValueError):
    """A create or revoke that cannot be done (duplicate or unknown name, wrong pepper)."""


class PepperMismatch(ApiKeyError):
    """The pepper in use is not the one the database's check value was made with."""


class PepperUnproven(ApiKeyError):
    """The database has keys from before the pepper check and no check value yet."""


class KeyCheckBusy(Exception):
    """A key could not be checked in time (a flood of old-format keys); retry shortly."""


class IdentifierBusy(Exception):
    """A key made before its HMAC was kept cannot be checked now: a check of its identifier is
    running, or too many wrong secrets were tried on it; `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    key_id: int
    name: str


def pepper_check_value(pepper: str) -> str:
    return hmac.new(pepper.encode("utf-8"), _PEPPER_CHECK, hashlib.sha256).hexdigest()


def _encodable(key: object) -> bytes | None:
    """The key's UTF-8 bytes, or None for anything that cannot be a key."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        return None
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") from JSON
        return None


def key_identifier(key: object) -> str | None:
    """The public identifier of a key in the current format, else None."""
    if not isinstance(key, str):
        return None
    match = _NEW_KEY.fullmatch(key)
    return match.group(1) if match else None


class ApiKeyService:
    def __init__(self, sessions: Sessions, pepper: str, hasher: PasswordHasher | None = None,
                 revocation_check_seconds: float = REVOCATION_CHECK_SECONDS, clock=time.monotonic,
                 argon2_slots: threading.Semaphore | None = None):
        self._store = ApiKeyStore(sessions)
        self._revocation_check_seconds = revocation_check_seconds
        self._clock = clock
        self._checked_at: dict[int, float] = {}  # key id -> when it was last seen unrevoked
        self._pepper = pepper
        self._lookup_secret = hmac.new(pepper.encode("utf-8"), _LEGACY_LOOKUP, hashlib.sha256).digest()
        self._hasher = hasher or PasswordHasher()
        self._slots = argon2_slots or ARGON2_SLOTS
        self._lock = threading.Lock()
        self._legacy_pass = threading.Lock()
        self._known: dict[bytes, Caller] = {}
        self._rejected: OrderedDict[bytes, float] = OrderedDict()
        self._last_used_written: dict[int, object] = {}
        self._in_flight: dict[bytes, threading.Lock] = {}
        self._identifier_gate = IdentifierGate(IDENTIFIER_FAILURE_LIMIT, IDENTIFIER_FAILURE_WINDOW, clock)

    # -- the pepper check -----------------------------------------------------------------

    def check_pepper(self, *, authoritative: bool) -> None:
        """Raise PepperMismatch when the database's check value was made with another pepper.

        With no check value yet, it is recorded from this pepper, except that a process that is
        not `authoritative` (the command line) leaves a database that already has keys to the
        server (PepperUnproven): nothing proves its pepper is theirs."""
        expected = pepper_check_value(self._pepper)
        stored = self._store.pepper_check()
        if stored is None:
            if not authoritative and self._store.active_count():
                raise PepperUnproven("this database has API keys from before the pepper check, and the "
                                     "server has not recorded its pepper yet")
            stored = self._store.claim_pepper_check(expected, utcnow())
        if not hmac.compare_digest(stored, expected):
            raise PepperMismatch("the API key pepper in use is not the one this database's keys were made with")

    # -- administration (the command line) ------------------------------------------------

    def create(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise ApiKeyError(f"a key name must be 1 to {NAME_MAX} characters")
        self.check_pepper(authoritative=False)
        for _ in range(3):  # a clash of 64-bit random identifiers is all but impossible
            public_id = secrets.token_hex(PUBLIC_ID_BYTES)
            key = f"{public_id}.{secrets.token_hex(SECRET_BYTES)}"
            with self._slots:
                key_hash = self._hasher.hash(key + self._pepper)
            try:
                self._store.add(name, public_id, key_hash, utcnow(), lookup_hmac=self._lookup_hmac(key))
            except DuplicateKey:
                if any(k.name == name for k in self._store.list()):
                    raise ApiKeyError(f"a key named {name!r} already exists") from None
                continue
            return key
        raise ApiKeyError("could not create a key; try again")

    def list(self) -> list[KeyInfo]:
        return self._store.list()

    def revoke(self, name: str) -> None:
        if not self._store.revoke(name, utcnow()):
            raise ApiKeyError(f"no active key named {name!r}")
        with self._lock:
            self._known = {fp: c for fp, c in self._known.items() if c.name != name}
            self._checked_at.clear()

    # -- the request path ------------------------------------------------------------------

    def cached(self, key: object) -> Caller | None:
        """The caller for a key this process has already verified (no database read, no argon2)."""
        encoded = _encodable(key)
        if encoded is None:
            return None
        with self._lock:
            return self._known.get(self._fingerprint(encoded))

    def verify(self, key: object, *, old_key_pass: bool = True) -> Caller | None:
        """The caller a key belongs to, or None for a missing, malformed, wrong or revoked key.

        `old_key_pass=False` skips trying a 64-hex key against the old keys not seen since the
        upgrade (the one check that costs more than one argon2 verification); the answer is then
        None for such a key, and not remembered as wrong. Raises KeyCheckBusy when that pass
        cannot get its turn within LEGACY_WAIT_SECONDS."""
        encoded = _encodable(key)
        if encoded is None:
            return None
        fingerprint = self._fingerprint(encoded)
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
        try:
            with flight:
                with self._lock:
                    caller = self._known.get(fingerprint)
                    if caller is None and self._recently_rejected(fingerprint):
                        return None
                if caller is not None:
                    return caller
                caller, definitive = self._look_up(key, old_key_pass)
                if caller is not None or definitive:
                    self._remember(fingerprint, caller)
        finally:
            with self._lock:
                self._in_flight.pop(fingerprint, None)
        return caller

    def _fingerprint(self, encoded: bytes) -> bytes:
        return hmac.new(self._lookup_secret, encoded, hashlib.sha256).digest()

    def _lookup_hmac(self, key: str) -> str:
        return self._fingerprint(key.encode("utf-8")).hex()

    def _look_up(self, key: str, old_key_pass: bool) -> tuple[Caller | None, bool]:
        """(caller or None, whether a None is final for this key)."""
        public_id = key_identifier(key)
        if public_id is not None:
            stored = self._store.active_by_public_id(public_id)
            if stored is None:
                return None, True
            lookup = self._lookup_hmac(key)
            if stored.lookup_hmac is not None:  # no argon2: the HMAC decides, right or wrong
                return (self._accepted(stored), True) if hmac.compare_digest(stored.lookup_hmac, lookup) else (None, True)
            return self._first_check(stored, public_id, key, lookup)
        if not _LEGACY_KEY.fullmatch(key):
            return None, True
        lookup = self._lookup_hmac(key)
        stored = self._store.active_by_lookup_hmac(lookup)
        if stored is not None:  # recorded after an argon2 success: finding it by HMAC proves it
            return self._accepted(stored), True
        if not old_key_pass:
            return None, False
        if not self._legacy_pass.acquire(timeout=LEGACY_WAIT_SECONDS):
            raise KeyCheckBusy("too many API key checks at once; retry in a second")
        try:
            for stored in self._store.active_legacy_unseen():
                if self._argon2_matches(stored, key):
                    self._store.record_lookup_hmac(stored.id, lookup)
                    return self._accepted(stored), True
        finally:
            self._legacy_pass.release()
        return None, True

    def _first_check(self, stored: StoredKey, public_id: str, key: str, lookup: str) -> tuple[Caller | None, bool]:
        """argon2 for a key made before its HMAC was kept: one per identifier at a time, a
        bounded number wrong; a success records the HMAC, so it is the only one."""
        wait = self._identifier_gate.enter(public_id)
        if wait is not None:
            raise IdentifierBusy(wait)
        matches = False
        try:
            matches = self._argon2_matches(stored, key)
            if matches:
                self._store.record_lookup_hmac(stored.id, lookup)
        finally:
            self._identifier_gate.leave(public_id, wrong=not matches)
        return (self._accepted(stored), True) if matches else (None, True)

    def _argon2_matches(self, stored: StoredKey, key: str) -> bool:
        with self._slots:
            try:
                return self._hasher.verify(stored.key_hash, key + self._pepper)
            except (VerificationError, InvalidHashError):
                return False

    def _accepted(self, stored: StoredKey) -> Caller:
        self._checked_at[stored.id] = self._clock()  # the read that found it saw it unrevoked
        self._touch(stored.id)
        return Caller(stored.id, stored.name)

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

    def still_active(self, caller: Caller) -> bool:
        """Whether `caller`'s key is not revoked, read from the database at most once every
        REVOCATION_CHECK_SECONDS (the trader's page checks its session's key with this)."""
        return self._still_active(caller)

    def _still_active(self, caller: Caller) -> bool:
        checked_at = self._checked_at.get(caller.key_id)
        if checked_at is not None and self._clock() - checked_at < self._revocation_check_seconds:
            return True
        seen_at = self._clock()
        if not self._store.is_active(caller.key_id):
            self._checked_at.pop(caller.key_id, None)
            return False
        self._touch(caller.key_id)
        self._checked_at[caller.key_id] = seen_at
        return True

    def _touch(self, key_id: int) -> None:
        now = utcnow()
        written = self._last_used_written.get(key_id)
        if written is not None and now - written < LAST_USED_RESOLUTION:
            return
        self._last_used_written[key_id] = now
        self._store.touch(key_id, now)
