"""Errors of the domain layer.

`DomainError` means "the caller must change the request": the edge turns it into HTTP 400
(never a 5xx, so a TradingView alert is not re-sent for something a retry cannot fix).
"""
from __future__ import annotations

from typing import Any


class DomainError(ValueError):
    """A request the caller must fix. `message` is safe to show; `details` is optional context."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"DomainError({self.message!r}, details={self.details!r})"
