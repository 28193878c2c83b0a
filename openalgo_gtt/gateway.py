"""The long-lived parts of one running service, built once per process from the Settings."""
from __future__ import annotations

import hashlib
import hmac
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.config import Settings
from openalgo_gtt.domain.strategy import BracketPcts
from openalgo_gtt.services.apikeys import ApiKeyService
from openalgo_gtt.services.audit import AuditEntry, AuditLog, observe_broker_call
from openalgo_gtt.services.gtt import GttService
from openalgo_gtt.services.lease import DatabaseLease
from openalgo_gtt.services.tokens import TokenProvider
from openalgo_gtt.services.trade_limit import DailyTradeLimit, Reservation
from openalgo_gtt.services.upstox_login import UpstoxLogin
from openalgo_gtt.services.watcher import LEASE_TTL, GttWatcher
from openalgo_gtt.store.db import make_engine, make_session_factory
from openalgo_gtt.store.gtt_orders import GttOrders
from openalgo_gtt.store.instruments import InstrumentIndex
from openalgo_gtt.store.request_records import DONE, FAULT, RequestRecords


def build_broker(settings: Settings, sessions: sessionmaker[Session],
                 tokens: TokenProvider | None = None) -> Broker:
    if settings.broker == "upstox":
        from openalgo_gtt.brokers.pacing import OrderPacer
        from openalgo_gtt.brokers.upstox import UpstoxBroker

        return UpstoxBroker(
            settings.upstox_api_url,
            # keys.json > ACCESS_TOKEN > the stored login; an expired login fails before any HTTP.
            tokens.current if tokens is not None else (settings.access_token or ""),
            timeout=settings.upstox_timeout,
            # With several worker processes, a Redis storage shares the windows between them.
            pacer=OrderPacer(settings.order_rate_limits, storage_uri=settings.rate_limit_storage_uri),
            observer=tokens.observing(observe_broker_call) if tokens is not None else observe_broker_call,
        )
    from openalgo_gtt.brokers.sandbox import SandboxBroker
    from openalgo_gtt.store.sandbox import SandboxRepository

    return SandboxBroker(SandboxRepository(sessions))


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    api_keys: ApiKeyService
    audit: AuditLog

    @classmethod
    def build(cls, settings: Settings) -> "Gateway":
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            api_keys=ApiKeyService(sessions, settings.api_key_pepper),
            audit=AuditLog(engine),
        )

    # Built on first use, so commands that never trade (apikey, db) never touch the broker.
    @cached_property
    def broker(self) -> Broker:
        return build_broker(self.settings, self.sessions, self.tokens)

    @cached_property
    def tokens(self) -> TokenProvider:
        return TokenProvider.from_settings(self.settings, self.sessions)

    @cached_property
    def upstox_login(self) -> UpstoxLogin:
        return UpstoxLogin.from_settings(self.settings, self.tokens)

    @cached_property
    def instruments(self) -> InstrumentIndex:
        return InstrumentIndex.from_engine(self.engine)

    @cached_property
    def trade_limit(self) -> DailyTradeLimit:
        return DailyTradeLimit(self.engine, self.settings.daily_trade_limit)

    @cached_property
    def orders(self) -> GttOrders:
        return GttOrders(self.sessions)

    @cached_property
    def holder_id(self) -> str:
        """This process, as leases and request records name it: host:pid:token."""
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @cached_property
    def request_records(self) -> RequestRecords:
        return RequestRecords(self.engine, self.sessions, self.holder_id)

    @property
    def stale_after(self) -> timedelta:
        """How long a request record may sit pending before its process is presumed dead: longer
        than any request can take (two broker timeouts and a full pacing wait)."""
        return timedelta(seconds=2 * self.settings.upstox_timeout + 20)

    @cached_property
    def watcher(self) -> GttWatcher:
        lease = DatabaseLease(self.engine, "gtt-watcher", self.holder_id, ttl=LEASE_TTL)
        return GttWatcher(self.broker, self.orders, lease, self.settings.oco_poll_seconds,
                          recover=self.recover_unsettled)

    def start_watching(self):
        """Reconcile every open OCO pair, lost place and recorded status with the broker (every
        process does this once before it serves), then start the watcher thread (only the lease
        holder polls). Returns the reconcile report, or the broker error that prevented it (the
        watcher retries)."""
        try:
            report = self.watcher.sync()
        except BrokerError as exc:
            report = exc
        self.watcher.start()
        return report

    def recover_unsettled(self) -> int:
        """Settle places whose outcome was lost (a timeout, a crash): each GTT found at the
        broker is recorded; each that is not gives its reserved trade back. Returns how many."""
        self.request_records.purge_expired()  # answered records past their window
        settled = 0
        for snapshot in self.request_records.unsettled(self.stale_after):
            if not self.request_records.take_over(snapshot):
                continue
            placed = self.gtts.recover(snapshot.plan, snapshot.attempt_started_at)
            if placed is None and snapshot.reserved_day is not None:
                self.trade_limit.release(Reservation(snapshot.reserved_day, 0))
            body = None if placed is None else {"status": "success", "trigger_id": placed.trigger_id,
                                                "trade_count": placed.trade_count}
            self.request_records.finish(snapshot.id, DONE if placed else FAULT, 200 if placed else None, body,
                                        keep_reservation=False, forget_plan=True)
            if placed is not None:
                self._audit_recovered(snapshot.plan["order"], body)
            settled += 1
        return settled

    def _audit_recovered(self, order: dict, body: dict) -> None:
        """The audit row of a place whose process stopped after the broker call and before its
        own row was written (it writes it just after answering): one row per request, always."""
        request_id = order.get("request_id")
        if not request_id or self.audit.exists(request_id):
            return
        self.audit.write(AuditEntry(
            request_id=request_id, created_at=utcnow(), method="POST", endpoint="(recovered place)",
            client_addr=None, api_key_name=order.get("api_key_name"), request_body=None,
            response_body={**body, "request_id": request_id}, http_status=200, latency_ms=0.0,
            error="the process stopped before recording this place (its answer may not have reached the "
                  "caller); the GTT was found at the broker and recorded",
        ))

    @property
    def webhook_secret(self) -> str:
        """The secret in the Upstox GTT webhook URL, derived from the pepper: stable across
        restarts and workers, never stored."""
        return hmac.new(self.settings.api_key_pepper.encode(), b"upstox-gtt-webhook", hashlib.sha256).hexdigest()[:32]

    @cached_property
    def gtts(self) -> GttService:
        pcts = BracketPcts(
            entry=self.settings.auto_entry_pct,
            target=self.settings.auto_target_pct,
            sl=self.settings.auto_sl_pct,
        )
        return GttService(self.broker, self.instruments, self.trade_limit, self.orders, pcts,
                          lookup_budget=self.settings.upstox_timeout)

    def close(self) -> None:
        watcher = self.__dict__.get("watcher")
        if watcher is not None:
            watcher.stop()
        broker = self.__dict__.get("broker")
        if broker is not None and hasattr(broker, "close"):
            broker.close()
        self.engine.dispose()
