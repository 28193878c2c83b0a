"""The Upstox login's vocabulary: a token as Upstox hands it over, a token as stored, what became
of a one-time login state, and the secrets derived from API_KEY_PEPPER.

Pure values and functions: the broker client (brokers/upstox_login.py) produces the first ones,
the repository (store/logins.py) the stored ones, the use case (services/upstox_login.py) joins
them. The key that encrypts the stored token and the notifier webhook's URL secret both come from
the pepper (HKDF-SHA256, different `info`), so no further secret has to be configured.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openalgo_gtt.domain.clock import ist_text

_HKDF_SALT = b"openalgo-gtt"
_TOKEN_KEY_INFO = b"openalgo-gtt/upstox-access-token-encryption/v1"
_NOTIFIER_INFO = b"openalgo-gtt/upstox-notifier-url/v1"


@dataclass(frozen=True)
class IssuedToken:
    """An access token Upstox issued: from the code exchange, or pushed to the notifier webhook
    (which also says when it was issued and when it expires)."""

    access_token: str = field(repr=False)
    user_id: str | None
    user_name: str | None
    issued_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AppTokenRequest:
    """Upstox's answer to an access-token request (approve in the Upstox app)."""

    authorization_expiry: datetime | None  # approve before this
    notifier_url: str | None  # where Upstox will deliver the token (set on the Upstox app)

    def as_dict(self) -> dict:
        return {"authorization_expiry": ist_text(self.authorization_expiry) or None, "notifier_url": self.notifier_url}


@dataclass(frozen=True)
class StoredToken:
    """The newest stored login, decrypted."""

    id: int
    access_token: str = field(repr=False)
    user_id: str | None
    source: str  # "login" (code exchange) | "notifier"
    issued_at: datetime
    expires_at: datetime


class StateUse(StrEnum):
    """What consuming a login state found: it is single use and valid for a few minutes."""

    TAKEN = "taken"  # it was fresh and is now used up
    UNKNOWN = "unknown"
    ALREADY_USED = "already_used"
    EXPIRED = "expired"


def _derive(pepper: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info).derive(pepper.encode("utf-8"))


def token_cipher(pepper: str) -> Fernet:
    """Fernet (AES-128-CBC + HMAC-SHA256) keyed from the pepper: the stored token's encryption."""
    return Fernet(base64.urlsafe_b64encode(_derive(pepper, _TOKEN_KEY_INFO)))


def notifier_secret(pepper: str) -> str:
    """The unguessable last path segment of the notifier webhook (128 bits, hex)."""
    return _derive(pepper, _NOTIFIER_INFO)[:16].hex()
