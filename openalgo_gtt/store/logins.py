"""The Upstox login's rows: the stored access token (`upstox_tokens`) and the one-time login
states (`login_states`). The only SQL of the login use cases and the token provider.

Both repositories hand back the domain's values (domain/login.py), never ORM rows. The token is
encrypted here, on its way in, with the pepper-derived key; a state is kept only as the hash the
caller computed.
"""
from __future__ import annotations

import logging
from datetime import datetime

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.login import StateUse, StoredToken, token_cipher
from openalgo_gtt.store.login_models import LoginState, UpstoxToken

log = logging.getLogger(__name__)


KITE_SOURCE = "kite"  # a Kite login's row; every other source is an Upstox login's


class TokenStore:
    """The newest login's token of one broker, encrypted in `upstox_tokens` (Kite's logins are
    kept there too, as source "kite": one gateway drives one broker, and a token of the other
    broker must never be sent)."""

    def __init__(self, sessions: sessionmaker[Session], pepper: str, *, broker: str = "upstox") -> None:
        self.sessions = sessions
        self.broker = broker
        self._mine = (UpstoxToken.source == KITE_SOURCE) if broker == "kite" else (UpstoxToken.source != KITE_SOURCE)
        self._cipher = token_cipher(pepper)
        self._generation = 0  # bumped by every save in this process (invalidates caches)
        self._warned_undecryptable: int | None = None

    @property
    def generation(self) -> int:
        return self._generation

    def save(self, access_token: str, *, user_id: str | None, source: str, issued_at: datetime,
             expires_at: datetime) -> StoredToken:
        encrypted = self._cipher.encrypt(access_token.encode("utf-8")).decode("ascii")
        row = UpstoxToken(user_id=user_id, encrypted_token=encrypted, source=source,
                          issued_at=as_utc(issued_at), expires_at=as_utc(expires_at))
        with self.sessions.begin() as session:
            session.add(row)
            session.flush()
            # Only the newest login is ever used: older tokens are not kept, even encrypted.
            session.execute(delete(UpstoxToken).where(UpstoxToken.id < row.id, self._mine))
            row_id = row.id
        self._generation += 1
        return StoredToken(row_id, access_token, user_id, source, as_utc(issued_at), as_utc(expires_at))

    def latest_id(self) -> int | None:
        with self.sessions() as session:
            return session.scalar(select(UpstoxToken.id).where(self._mine).order_by(UpstoxToken.id.desc()).limit(1))

    def latest(self) -> StoredToken | None:
        with self.sessions() as session:
            row = session.scalars(select(UpstoxToken).where(self._mine).order_by(UpstoxToken.id.desc()).limit(1)).first()
        if row is None:
            return None
        try:
            token = self._cipher.decrypt(row.encrypted_token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            if self._warned_undecryptable != row.id:
                self._warned_undecryptable = row.id
                log.warning("the stored Upstox login cannot be decrypted (was API_KEY_PEPPER changed?): "
                            "log in again")
            return None
        return StoredToken(row.id, token, row.user_id, row.source, as_utc(row.issued_at), as_utc(row.expires_at))


class LoginStates:
    """One-time login states, by the SHA-256 hash of the value handed to Upstox."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add(self, state_hash: str, *, created_at: datetime, expires_at: datetime,
            forget_expired_before: datetime) -> None:
        """Record a new state; states that expired before `forget_expired_before` are deleted."""
        with self._sessions.begin() as session:
            session.execute(delete(LoginState).where(LoginState.expires_at < forget_expired_before))
            session.add(LoginState(state_hash=state_hash, created_at=created_at, expires_at=expires_at,
                                   used_at=None))

    def consume(self, state_hash: str, now: datetime) -> StateUse:
        """Mark the state used if it is unused and unexpired, atomically (one UPDATE, so two
        callbacks racing with one state cannot both take it); otherwise say why not."""
        with self._sessions.begin() as session:
            taken = session.execute(
                update(LoginState)
                .where(LoginState.state_hash == state_hash, LoginState.used_at.is_(None),
                       LoginState.expires_at > now)
                .values(used_at=now)
            ).rowcount
            if taken == 1:
                return StateUse.TAKEN
            row = session.get(LoginState, state_hash)
            if row is None:
                return StateUse.UNKNOWN
            return StateUse.ALREADY_USED if row.used_at is not None else StateUse.EXPIRED
