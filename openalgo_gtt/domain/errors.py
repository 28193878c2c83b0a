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


class GttNotFound(LookupError):
    """No trigger with this id, neither recorded by the gateway nor at the broker."""

    def __init__(self, trigger_id: str):
        # OpenAlgo's words for an id it does not know (callers match on them).
        super().__init__(f"No active GTT with trigger_id {trigger_id}")
        self.trigger_id = trigger_id


class TradeLimitReached(Exception):
    """Today's trades are used up; `force` overrides."""

    def __init__(self, count: int, limit: int):
        super().__init__(f"Daily trade limit reached ({count} of {limit} today); send force=true to override")
        self.count = count
        self.limit = limit
