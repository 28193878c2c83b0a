"""What a use case knows of the request it serves, filled by the API layer at the start.

One typed object instead of keys on a framework's request globals: the services read and write
its fields (the caller's key name, the broker calls made, the error for the audit), and never
import the web framework.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from openalgo_gtt.brokers.base import BrokerCall


@dataclass
class RequestContext:
    request_id: str
    method: str
    endpoint: str  # the path, with any secret in it masked
    client_addr: str | None
    # The body as the audit keeps it, given the answer's status (a 413 body is never read).
    audit_body: Callable[[int], object] = lambda _status: None
    started: float = field(default_factory=time.perf_counter)
    api_key_name: str | None = None
    broker_calls: list[BrokerCall] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    audit_response: object = None  # kept in the audit instead of the whole answer (the order book)
    audit_written: bool = False  # a place writes its row with its outcome

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000
