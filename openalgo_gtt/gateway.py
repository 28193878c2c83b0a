"""The long-lived parts of one running service, built once per process from the Settings."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.config import Settings
from openalgo_gtt.services.apikeys import ApiKeyService
from openalgo_gtt.services.audit import AuditLog
from openalgo_gtt.store.db import make_engine, make_session_factory


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    api_keys: ApiKeyService
    audit: AuditLog

    @classmethod
    def build(cls, settings: Settings) -> "Gateway":
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            api_keys=ApiKeyService(sessions, settings.api_key_pepper),
            audit=AuditLog(sessions),
        )

    def close(self) -> None:
        self.engine.dispose()
