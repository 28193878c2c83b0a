"""What /api/health reports: the store reachable, today's trades against the limit, the audit
table's size (rows, the oldest row's time, the retention), the notifications outbox, the queue
of a burst's places (its length, its oldest entry's age, what it sent in the last minute), and
the Upstox token's state. Raises StoreUnavailable when the database cannot be read."""
from __future__ import annotations

from typing import Callable

from openalgo_gtt.domain.clock import ist_text
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.tokens import TokenProvider
from openalgo_gtt.services.trade_limit import DailyTradeLimit, trades_text
from openalgo_gtt.store.unit_of_work import Store, StoreUnavailable

__all__ = ["HealthCheck", "StoreUnavailable"]


class HealthCheck:
    def __init__(self, store: Store, broker_name: str, limit: DailyTradeLimit, tokens: TokenProvider,
                 audit_retention_days: int = 0, notifications: Notifications | None = None,
                 prices: Callable[[], dict] | None = None):
        self._notifications = notifications
        self._prices = prices  # SANDBOX_PRICES=upstox: the live prices' source and age
        self._audit_retention_days = audit_retention_days
        self._store = store
        self._broker_name = broker_name
        self._limit = limit
        self._tokens = tokens

    def report(self) -> dict:
        self._store.ping()
        count = self._limit.today_count()
        body = {"status": "ok", "service": "openalgo-gtt", "broker": self._broker_name,
                "today_trade_count": count, "daily_trade_limit": self._limit.limit,
                "today_forced_trades": self._limit.forced_beyond(count),
                "today_trades": trades_text(count, self._limit.limit, self._limit.forced_beyond(count)),
                "database": "ok"}
        rows, oldest = self._store.audit.stats()
        body.update(audit_rows=rows, audit_oldest_at=ist_text(oldest) or None,
                    audit_retention_days=self._audit_retention_days)
        queue = self._store.attempts.queue_stats(self._store.clock.now())
        body["queue"] = {
            "length": queue.length,
            "oldest_age_seconds": None if queue.oldest_at is None else
            round((self._store.clock.now() - queue.oldest_at).total_seconds(), 1),
            "sent_last_minute": queue.sent_last_minute,
        }
        if self._notifications is not None:
            # The outbox: deliveries waiting and given up, and the last error (URLs masked).
            body["notifications"] = self._notifications.describe()
        if self._broker_name in ("upstox", "kite"):
            body.update(self._tokens.describe())
        elif self._broker_name == "sandbox":
            body["prices"] = self._prices() if self._prices is not None else {"source": "manual"}
        return body
