"""What a place attempt's intent says, as the driver (services/attempts.py) and its callers read
it: the trigger id its legs make, its prices, the trigger the notifications describe, and the
audit rows of places whose own request could not write one."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Callable

from openalgo_gtt.domain.model import TriggerKind
from openalgo_gtt.domain.place_attempt import PlaceAttempt
from openalgo_gtt.domain.records import AuditEntry

Legs = list[tuple[str, str, str]]  # (broker GTT id, role, broker status)


@dataclass(frozen=True)
class Placed:
    trigger_id: str
    prices: dict[str, Decimal]
    warnings: tuple[str, ...] = ()
    trade_count: int | None = None


def trigger_id_of(plan: dict, legs: Legs) -> str:
    first = legs[0][0]
    return "OCO-" + first.removeprefix("GTT-") if plan["order"]["trigger_type"] == TriggerKind.TWO_LEG else first


def intent_trigger(plan: dict, trigger_id: str | None) -> SimpleNamespace:
    """A place's intent as the notification events read a trigger."""
    order = plan["order"]
    return SimpleNamespace(trigger_id=trigger_id or "", symbol=order["symbol"], exchange=order["exchange"],
                           action=order["action"], quantity=order["quantity"], legs=order["legs"])


def is_exit(plan: dict) -> bool:
    """A staged bracket's exit (services/staged_bracket.py), not a caller's place."""
    return plan.get("kind") == "staged_exit"


def entry_of(plan: dict) -> dict:
    return {"entry_gtt_id": plan["entry_gtt_id"], "entry_order_id": plan["entry_order_id"]}


def prices_of(plan: dict) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in plan["prices"].items()}


def recovered_audit(plan: dict, body: dict, now: datetime, exists: Callable[[str], bool]) -> AuditEntry | None:
    """The audit row of a place whose process stopped after the broker call and before its
    own row was written (it writes it just after answering): one row per request, always.
    A retry writes its own row, so this one is only for a request with none yet."""
    request_id = plan["order"].get("request_id")
    if is_exit(plan) or not request_id or exists(request_id):
        return None  # (a staged exit is the watcher's own place: no request, no audit row)
    return AuditEntry(
        request_id=request_id, created_at=now, method="POST", endpoint="(recovered place)",
        client_addr=None, api_key_name=plan["order"].get("api_key_name"), request_body=None,
        response_body=body, http_status=200, latency_ms=0.0,
        error="the process stopped before recording this place (its answer may not have reached the "
              "caller); the GTT was found at the broker and recorded")

def late_audit(attempt: PlaceAttempt, now: datetime, what: str, trigger_id: str | None) -> AuditEntry:
    order = attempt.plan["order"]
    return AuditEntry(
        request_id=str(uuid.uuid4()), created_at=now, method="POST", endpoint="(late GTT)",
        client_addr=None, api_key_name=order.get("api_key_name"), request_body=None,
        response_body={"trigger_id": trigger_id, "original_request_id": order.get("request_id")},
        http_status=200, latency_ms=0.0, error=what)
