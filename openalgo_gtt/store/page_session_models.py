"""The table of the trader's page sessions (api/dashboard): one row per signed-in browser.

Only the SHA-256 hash of the random session token is stored (the cookie holds the token), so a
copy of the database signs nobody in. A row ends at sign-out (deleted) or at `expires_at`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from openalgo_gtt.store.models import Base


class PageSession(Base):
    __tablename__ = "page_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(Integer)  # the key signed in with (its row in api_keys)
    api_key_name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
