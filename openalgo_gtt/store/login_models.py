"""Tables of the Upstox login: the stored access token and the one-time login states.

The access token is kept only encrypted (Fernet, see store/logins.py); a login state only as
the SHA-256 hash of the random value handed to Upstox. Timestamps are timezone-aware UTC.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openalgo_gtt.store.models import Base


class UpstoxToken(Base):
    """An Upstox access token obtained by logging in (browser, terminal or the app's notifier).

    The newest row (highest id) is the one used; saving a new token deletes the older rows.
    """

    __tablename__ = "upstox_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(64))  # Upstox's user id (UCC)
    encrypted_token: Mapped[str] = mapped_column(Text)  # Fernet token of the access token
    source: Mapped[str] = mapped_column(String(16))  # "login" (code exchange) | "notifier" | "kite" (a Kite login)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginState(Base):
    """The `state` of one login started at /upstox/login or by `python run.py login`: single use,
    valid for a few minutes. Only its SHA-256 hash is stored."""

    __tablename__ = "login_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
