"""The composition root: the long-lived parts of one running service, built once per process
from the Settings, eagerly and in one thread (so no two requests can race to build a service).

Building does no I/O: the broker opens connections, and the instrument index loads, on first use.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.config import Settings
from openalgo_gtt.domain.clock import SYSTEM_CLOCK, Clock, ist_today
from openalgo_gtt.domain.strategy import BracketPcts
from openalgo_gtt.logging_secrets import register_secrets, secrets_in_url
from openalgo_gtt.services.apikeys import ApiKeyService
from openalgo_gtt.services.attempts import AttemptDriver
from openalgo_gtt.services.audit_view import AuditView
from openalgo_gtt.services.audit import AuditRetention, AuditTrail, observe_broker_call
from openalgo_gtt.services.exactly_once import ExactlyOnce
from openalgo_gtt.services.fills import OrderFills
from openalgo_gtt.services.finder import BrokerFinder
from openalgo_gtt.services.gtt import GttService
from openalgo_gtt.services.health import HealthCheck
from openalgo_gtt.services.kite_login import KiteLogin
from openalgo_gtt.services.live_prices import LivePrices
from openalgo_gtt.services.notifications import Notifications, OutboxRetention, Sender
from openalgo_gtt.services.place_queue import PlaceQueue
from openalgo_gtt.services.place_sender import PlaceSender
from openalgo_gtt.services.paper import PaperBook
from openalgo_gtt.services.place import PlaceGtt
from openalgo_gtt.services.page_sessions import PageSessions
from openalgo_gtt.services.planner import Planner
from openalgo_gtt.services.staged_bracket import StagedBrackets
from openalgo_gtt.services.token_alerts import TokenAlerts
from openalgo_gtt.services.tokens import TokenProvider
from openalgo_gtt.services.trade_limit import DailyTradeLimit
from openalgo_gtt.services.upstox_login import UpstoxLogin
from openalgo_gtt.services.expiry import Expiries
from openalgo_gtt.services.watcher import LEASE_TTL, GttWatcher
from openalgo_gtt.store.db import make_session_factory
from openalgo_gtt.store.engine import make_engine
from openalgo_gtt.store.gtt_orders import GttOrders
from openalgo_gtt.store.instruments import InstrumentIndex
from openalgo_gtt.store.instruments.load import master_family
from openalgo_gtt.store.leases import DatabaseLease
from openalgo_gtt.store.page_sessions import PageSessionRows
from openalgo_gtt.store.unit_of_work import Store


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
    if settings.broker == "kite":
        from openalgo_gtt.brokers.kite import KiteBroker
        from openalgo_gtt.brokers.pacing import OrderPacer

        return KiteBroker(
            settings.kite_api_url, settings.kite_api_key or "",
            # keys.json > KITE_ACCESS_TOKEN > the stored Kite login; an expired login fails before any HTTP.
            tokens.current if tokens is not None else (settings.kite_access_token or ""),
            timeout=settings.kite_timeout,
            # Kite's limits: 10/s for GTT and order calls, 1/s for quotes; shared through Redis
            # between worker processes like Upstox's.
            pacer=OrderPacer(settings.kite_order_rate_limits, storage_uri=settings.rate_limit_storage_uri,
                             key="kite-orders"),
            quote_pacer=OrderPacer(settings.kite_quote_rate_limits, storage_uri=settings.rate_limit_storage_uri,
                                   key="kite-quotes"),
            observer=tokens.observing(observe_broker_call) if tokens is not None else observe_broker_call,
        )
    from openalgo_gtt.brokers.sandbox import SandboxBroker
    from openalgo_gtt.store.sandbox import SandboxRepository

    return SandboxBroker(SandboxRepository(sessions))


def build_live_prices(settings: Settings, broker: Broker, tokens: TokenProvider, watcher: GttWatcher,
                      clock: Clock, sessions: sessionmaker[Session]) -> LivePrices | None:
    """SANDBOX_PRICES=upstox (or kite) on the sandbox: prices from that broker's LTP quote, read
    with its token through a quote pacer (about one read a second, shared between workers). The
    broker client built here is only ever asked for quotes."""
    if settings.broker != "sandbox" or settings.sandbox_prices not in ("upstox", "kite"):
        return None
    from openalgo_gtt.brokers.pacing import OrderPacer

    if settings.sandbox_prices == "kite":
        from openalgo_gtt.brokers.kite import KiteBroker
        from openalgo_gtt.services.tokens import KITE
        from openalgo_gtt.store.logins import TokenStore

        kite_tokens = TokenProvider(TokenStore(sessions, settings.api_key_pepper, broker="kite"),
                                    configured_token=settings.kite_access_token,
                                    configured_source=settings.kite_access_token_source, policy=KITE)
        kite_tokens.on_rejected = tokens.on_rejected
        quotes = KiteBroker(settings.kite_api_url, settings.kite_api_key or "", kite_tokens.current,
                            timeout=settings.kite_timeout, pacer=None, quote_pacer=None,
                            observer=kite_tokens.observing(observe_broker_call))
    else:
        from openalgo_gtt.brokers.upstox import UpstoxBroker

        quotes = UpstoxBroker(settings.upstox_api_url, tokens.current, timeout=settings.upstox_timeout, pacer=None,
                              observer=tokens.observing(observe_broker_call), read_retries=0)
    pacer = OrderPacer(settings.sandbox_quote_rate_limits, storage_uri=settings.rate_limit_storage_uri,
                       key=f"{settings.sandbox_prices}-sandbox-quotes")
    prices = LivePrices(broker, quotes, source_name=settings.sandbox_prices, settle=watcher.settle_broker_gtts,
                        pace=pacer.acquire, may_read=lambda: watcher.holding, clock=clock)
    broker.price_feed = prices.fetch  # a place on a symbol with no price yet reads it first
    return prices


def register_log_secrets(settings: Settings) -> None:
    """What no log line may show, whatever library writes it (logging_secrets.py): every secret
    part of each notification URL, the broker tokens and app secrets, the pepper."""
    register_secrets(*(part for url in settings.notify_urls for part in secrets_in_url(url)),
                     settings.access_token or "", settings.kite_access_token or "", settings.upstox_api_secret or "",
                     settings.kite_api_secret or "", settings.api_key_pepper or "")


def stale_after(settings: Settings) -> timedelta:
    """How long a request record may sit pending before its process is presumed dead: longer
    than any request can take (two broker timeouts and a full pacing wait)."""
    return timedelta(seconds=2 * settings.broker_timeout + 20)


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    holder_id: str  # this process, as leases and request records name it: host:pid:token
    store: Store
    api_keys: ApiKeyService
    audit: AuditTrail
    tokens: TokenProvider
    upstox_login: UpstoxLogin
    broker: Broker
    instruments: InstrumentIndex
    trade_limit: DailyTradeLimit
    exactly_once: ExactlyOnce
    place: PlaceGtt
    gtts: GttService
    attempts: AttemptDriver
    watcher: GttWatcher
    health: HealthCheck
    notifications: Notifications
    sender: Sender
    page_sessions: PageSessions  # the trader's page (api/dashboard)
    audit_view: AuditView
    paper: PaperBook | None = None  # the sandbox's paper account (orderbook, funds, ...)
    live_prices: LivePrices | None = None  # SANDBOX_PRICES=upstox
    fills: OrderFills | None = None  # fired legs' fills: gttorderstatus, the page, the "triggered" message
    kite_login: KiteLogin | None = None  # with BROKER=kite: /kite/login and `python run.py login`

    @classmethod
    def build(cls, settings: Settings, *, tokens: TokenProvider | None = None, broker: Broker | None = None,
              upstox_login: UpstoxLogin | None = None, clock: Clock = SYSTEM_CLOCK) -> "Gateway":
        """Every part from `settings`; a part given here (a test's clocked token provider, say)
        is used instead, and everything that depends on it is built on it."""
        register_log_secrets(settings)
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        holder_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        store = Store(engine, sessions, holder_id, clock)
        audit = AuditTrail(store.audit)
        tokens = tokens or TokenProvider.from_settings(settings, sessions)
        broker = broker or build_broker(settings, sessions, tokens)
        # Loads on first lookup; refuses another broker's master (Upstox's keys on Kite, say).
        # The sandbox takes either master (Upstox's keys or Kite's); a live broker only its own.
        instruments = InstrumentIndex(engine, master=None if settings.broker == "sandbox"
                                      else master_family(settings.broker))
        notifications = Notifications(store.outbox, settings.notify_urls, settings.notify_events,
                                      settings.api_key_pepper)
        trade_limit = DailyTradeLimit(store.trades, settings.daily_trade_limit, today=lambda: ist_today(clock.now()),
                                      notifications=notifications)
        exactly_once = ExactlyOnce(store, audit, settings.dedupe_window_seconds, stale_after(settings),
                                   first_may_run=timedelta(seconds=settings.broker_timeout + 1))
        pcts = BracketPcts(entry=settings.auto_entry_pct, target=settings.auto_target_pct, sl=settings.auto_sl_pct)
        planner = Planner(broker, instruments, pcts)
        finder = BrokerFinder(broker, store, stale_after(settings))
        attempts = AttemptDriver(store, finder, trade_limit, notifications,
                                 settle_window=timedelta(seconds=settings.settle_seconds),
                                 stale_after=stale_after(settings))
        paper = PaperBook(broker, store, settings.sandbox_capital, settings.broker, today=trade_limit.today)
        place_sender = PlaceSender(broker, attempts, lookup_budget=settings.broker_timeout)
        # A burst's places, sent by the watcher's lease holder (one process across workers).
        place_queue = PlaceQueue(attempts, place_sender, broker, holding=lambda: watcher.holding)
        place = PlaceGtt(broker, planner, trade_limit, exactly_once, attempts, place_sender, place_queue,
                         funds_check=paper.check_place if paper.enabled else None)
        lease = DatabaseLease(engine, "gtt-watcher", holder_id, ttl=LEASE_TTL)
        retention = AuditRetention(store.audit, settings.audit_retention_days)
        # Kite's staged bracket exit is a place attempt too, through the same driver.
        staged = StagedBrackets(broker, store.exits, attempts) if StagedBrackets.needed_for(broker) else None
        token_alerts = TokenAlerts(tokens, store, notifications)
        tokens.on_rejected = token_alerts.rejected
        outbox_retention = OutboxRetention(store.outbox, settings.audit_retention_days)
        # A fired leg's order: looked up as its fire is recorded, followed while it is open.
        fills = OrderFills(broker, store, notifications, clock)
        housekeeping = [retention.run, outbox_retention.run, fills.follow_up] + (
            [token_alerts.check_expiry] if settings.broker == "upstox" else [])
        watcher = GttWatcher(broker, store, lease, settings.oco_poll_seconds,
                             settle_attempts=attempts.settle_all,
                             housekeeping=housekeeping, notifications=notifications,
                             stage=staged.advance if staged is not None else (lambda: None), clock=clock,
                             fills=fills)
        # The caller's expiries are ended by the lease holder too, on each pass of its loop.
        watcher.expire = Expiries(broker, store, notifications, clock, watcher.settle_seen).run
        # One sender across every worker and host: the watcher's lease holder.
        sender = Sender(notifications, lambda: watcher.holding, settings.notify_timeout)
        live_prices = build_live_prices(settings, broker, tokens, watcher, clock, sessions)
        gtts = GttService(broker, instruments, store.orders, planner, exactly_once,
                          store=store, watcher=watcher, notifications=notifications, staged=staged,
                          funds_check=paper if paper.enabled else None)
        api_keys = ApiKeyService(sessions, settings.api_key_pepper)
        page_sessions = PageSessions(PageSessionRows(sessions), api_keys, settings.api_key_pepper,
                                     settings.dashboard_session_hours)
        return cls(
            settings=settings, engine=engine, sessions=sessions, holder_id=holder_id, store=store,
            api_keys=api_keys, audit=audit, tokens=tokens,
            upstox_login=upstox_login or UpstoxLogin.from_settings(settings, tokens), broker=broker, instruments=instruments,
            trade_limit=trade_limit, exactly_once=exactly_once, place=place,
            gtts=gtts, attempts=attempts,
            watcher=watcher, health=HealthCheck(store, settings.broker, trade_limit, tokens,
                                                audit_retention_days=settings.audit_retention_days,
                                                notifications=notifications,
                                                prices=live_prices.describe if live_prices is not None else None),
            notifications=notifications, sender=sender,
            page_sessions=page_sessions, audit_view=AuditView(engine), paper=paper, live_prices=live_prices,
            fills=fills,
            kite_login=KiteLogin.from_settings(settings, tokens) if settings.broker == "kite" else None,
        )

    @property
    def clock(self) -> Clock:
        return self.store.clock

    @property
    def orders(self) -> GttOrders:
        return self.store.orders

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
        self.sender.start()
        self.place.queue.start()
        if self.live_prices is not None:
            self.live_prices.start()
        return report

    @property
    def webhook_secret(self) -> str:
        """The secret in the Upstox GTT webhook URL, derived from the pepper: stable across
        restarts and workers, never stored."""
        return hmac.new(self.settings.api_key_pepper.encode(), b"upstox-gtt-webhook", hashlib.sha256).hexdigest()[:32]

    def close(self) -> None:
        self.place.queue.stop()
        if self.live_prices is not None:
            self.live_prices.stop()
        self.sender.stop()
        self.watcher.stop()
        self.audit.close()  # the summaries of requests counted, not yet written
        if hasattr(self.broker, "close"):
            self.broker.close()
        if self.kite_login is not None:
            self.kite_login.close()
        self.engine.dispose()
