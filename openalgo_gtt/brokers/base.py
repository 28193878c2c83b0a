"""The broker interface the GTT services call.

Upstox's adapter and the sandbox broker both implement `Broker`; nothing above this module
knows an Upstox JSON shape. The values that cross it (`GttRequest`, `BrokerGtt`, `Quote`) are the
domain's (`domain/model.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from openalgo_gtt.domain.model import BrokerGtt, GttRequest, Quote

@dataclass(frozen=True)
class BrokerCall:
    """One HTTP call made to the broker, for the audit record."""

    method: str
    path: str
    status: int | None  # None when no HTTP answer came back
    latency_ms: float
    error: str | None = None


BrokerCallObserver = Callable[[BrokerCall], None]


class Broker(Protocol):
    """What the GTT services need from a broker. Errors are `openalgo_gtt.brokers.errors` types."""

    name: str  # "upstox" | "sandbox"

    def place_gtt(self, request: GttRequest) -> str:
        """Place one GTT; returns the broker's GTT id."""

    def modify_gtt(self, gtt_id: str, request: GttRequest) -> str:
        """Replace a GTT's quantity and rules; returns its id."""

    def cancel_gtt(self, gtt_id: str) -> str:
        """Cancel a GTT; returns its id."""

    def get_gtt(self, gtt_id: str) -> BrokerGtt | None:
        """One GTT, or None when the broker does not know it."""

    def list_gtts(self) -> list[BrokerGtt]:
        """Every GTT of the account, in any state."""

    def quotes(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        """Last price and today's open for many instruments, keyed by instrument key."""
