"""What the gateway keeps of its own work: the triggers it placed and the audit trail.

Plain dataclasses, so the store hands back values rather than ORM rows bound to a session, and
the services and the order book never see SQLAlchemy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RecordedTrigger:
    """A trigger this gateway placed, as its caller knows it (one `gtt_orders` row)."""

    trigger_id: str  # what the caller holds
    broker_ids: list[str]  # the broker's GTT ids (two for an OCO)
    instrument_key: str
    symbol: str
    exchange: str
    trigger_type: str  # TriggerKind
    action: str
    product: str  # as the caller sent it: CNC, NRML, MIS, MTF
    quantity: int
    legs: list[dict]  # the rules sent, with each leg's role and price
    strategy: str | None
    status: str  # TriggerStatus
    status_message: str | None
    placed_at: datetime
    modified_at: datetime | None
    cancelled_at: datetime | None
    request_id: str
    api_key_name: str | None
    state_changed_at: datetime | None = None  # the last change of its state, wherever it happened
    expires_at: datetime | None = None  # the caller's expiry (expires_at on place); None: the broker's

    @property
    def is_pair(self) -> bool:
        """A two-leg trigger placed as two broker GTTs the watcher keeps in step (Upstox), not
        one native OCO (Kite's two-leg, which the broker settles itself)."""
        return len(self.broker_ids) == 2


@dataclass(frozen=True)
class RecordedLeg:
    """One broker GTT behind a two-leg trigger, and its last known state."""

    broker_id: str
    trigger_id: str
    role: str
    status: str  # the ENTRY rule's broker status, e.g. SCHEDULED
    message: str | None
    updated_at: datetime


@dataclass
class AuditEntry:
    """One request's audit row: what was asked, what was answered, and the broker calls made."""

    request_id: str
    created_at: datetime
    method: str
    endpoint: str
    client_addr: str | None
    api_key_name: str | None
    request_body: object
    response_body: object
    http_status: int
    latency_ms: float
    broker_calls: list = field(default_factory=list)  # brokers.base.BrokerCall
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class StagedExitRecord:
    """A staged bracket's exit as the store holds it (one `staged_exits` row)."""

    trigger_id: str
    entry_gtt_id: str
    entry_order_id: str | None
    state: str  # placing | placed | refused | failed
    exit_gtt_id: str | None
    message: str | None
    holder: str
    claimed_at: datetime
    updated_at: datetime
