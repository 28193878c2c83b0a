"""The api_keys table and the one-row pepper check: every query the API-key service needs,
returning dataclasses. Hashing, caching and deciding what a key is are the service's
(services/apikeys.py); nothing here sees a key, only what the service derives from one."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.store.models import ApiKey, PepperCheck

PEPPER_CHECK_ID = 1


class DuplicateKey(Exception):
    """A key with that name (or, vanishingly rarely, that public identifier) already exists."""


@dataclass(frozen=True)
class StoredKey:
    """An active key as the verifier needs it."""

    id: int
    name: str
    key_hash: str
    lookup_hmac: str | None = None  # HMAC of the whole key, once known (services/apikeys.py)


@dataclass(frozen=True)
class KeyInfo:
    """A key as `apikey list` shows it (never the key)."""

    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    legacy: bool = False  # issued before key identifiers (no `<id>.` prefix)


_ACTIVE = ApiKey.revoked_at.is_(None)
_STORED = (ApiKey.id, ApiKey.name, ApiKey.key_hash, ApiKey.lookup_hmac)


class ApiKeyStore:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    # -- administration ------------------------------------------------------------------

    def add(self, name: str, public_id: str, key_hash: str, created_at: datetime,
            lookup_hmac: str | None = None) -> None:
        with self._sessions.begin() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise DuplicateKey(name)
            try:
                session.execute(insert(ApiKey).values(name=name, public_id=public_id, key_hash=key_hash,
                                                      created_at=created_at, lookup_hmac=lookup_hmac))
            except IntegrityError:
                raise DuplicateKey(name) from None

    def list(self) -> list[KeyInfo]:
        with self._sessions() as session:
            rows = session.execute(
                select(ApiKey.name, ApiKey.created_at, ApiKey.last_used_at, ApiKey.revoked_at, ApiKey.public_id)
                .order_by(ApiKey.created_at)
            ).all()
        return [KeyInfo(r.name, r.created_at, r.last_used_at, r.revoked_at, r.public_id is None) for r in rows]

    def revoke(self, name: str, at: datetime) -> bool:
        """Revoke the active key `name`; False when there is none."""
        with self._sessions.begin() as session:
            done = session.execute(
                update(ApiKey).where(ApiKey.name == name, _ACTIVE).values(revoked_at=at)
            ).rowcount
        return bool(done)

    def active_count(self) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(ApiKey).where(_ACTIVE)) or 0

    # -- the request path -----------------------------------------------------------------

    def active_by_public_id(self, public_id: str) -> StoredKey | None:
        with self._sessions() as session:
            row = session.execute(select(*_STORED).where(ApiKey.public_id == public_id, _ACTIVE)).first()
        return StoredKey(*row) if row else None

    def active_by_lookup_hmac(self, lookup_hmac: str) -> StoredKey | None:
        with self._sessions() as session:
            row = session.execute(select(*_STORED).where(ApiKey.lookup_hmac == lookup_hmac, _ACTIVE)).first()
        return StoredKey(*row) if row else None

    def active_legacy_unseen(self) -> list[StoredKey]:
        """Active keys without an identifier whose lookup HMAC is not recorded yet (issued before
        migration 0006 and not used since). Their number only ever shrinks."""
        with self._sessions() as session:
            rows = session.execute(
                select(*_STORED)
                .where(_ACTIVE, ApiKey.public_id.is_(None), ApiKey.lookup_hmac.is_(None))
                .order_by(ApiKey.last_used_at.desc(), ApiKey.id)
            ).all()
        return [StoredKey(*row) for row in rows]

    def record_lookup_hmac(self, key_id: int, lookup_hmac: str) -> None:
        with self._sessions.begin() as session:
            session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.lookup_hmac.is_(None))
                            .values(lookup_hmac=lookup_hmac))

    def is_active(self, key_id: int) -> bool:
        with self._sessions() as session:
            return session.scalar(select(ApiKey.id).where(ApiKey.id == key_id, _ACTIVE)) is not None

    def touch(self, key_id: int, at: datetime) -> None:
        with self._sessions.begin() as session:
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))

    # -- the pepper check -----------------------------------------------------------------

    def pepper_check(self) -> str | None:
        with self._sessions() as session:
            return session.scalar(select(PepperCheck.check_value).where(PepperCheck.id == PEPPER_CHECK_ID))

    def claim_pepper_check(self, value: str, at: datetime) -> str:
        """Record `value` when no check is recorded yet; returns the recorded one (another
        process may have won the race)."""
        try:
            with self._sessions.begin() as session:
                session.execute(insert(PepperCheck).values(id=PEPPER_CHECK_ID, check_value=value, created_at=at))
        except IntegrityError:
            pass
        return self.pepper_check() or value
