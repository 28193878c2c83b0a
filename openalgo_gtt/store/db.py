"""Sessions: the factory every repository that uses the ORM is built with (the engine itself is
engine.py)."""
from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# What services are handed to build their repositories with (they never open sessions themselves).
Sessions = sessionmaker[Session]
