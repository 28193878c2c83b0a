"""The page sessions' rows (`page_sessions`): the only SQL of services/page_sessions.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.store.page_session_models import PageSession


@dataclass(frozen=True)
class StoredPageSession:
    api_key_id: int
    api_key_name: str
    created_at: datetime
    expires_at: datetime


class PageSessionRows:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def add(self, token_hash: str, api_key_id: int, api_key_name: str, created_at: datetime,
            expires_at: datetime) -> None:
        with self._sessions.begin() as session:
            session.execute(insert(PageSession).values(token_hash=token_hash, api_key_id=api_key_id,
                                                       api_key_name=api_key_name, created_at=created_at,
                                                       expires_at=expires_at))

    def get(self, token_hash: str) -> StoredPageSession | None:
        with self._sessions() as session:
            row = session.execute(select(PageSession.api_key_id, PageSession.api_key_name, PageSession.created_at,
                                         PageSession.expires_at).where(PageSession.token_hash == token_hash)).first()
        if row is None:
            return None
        return StoredPageSession(row.api_key_id, row.api_key_name, as_utc(row.created_at), as_utc(row.expires_at))

    def delete(self, token_hash: str) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(PageSession).where(PageSession.token_hash == token_hash))

    def purge_expired(self, now: datetime) -> int:
        with self._sessions.begin() as session:
            return session.execute(delete(PageSession).where(PageSession.expires_at <= now)).rowcount or 0
