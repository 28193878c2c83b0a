"""What /api/health reports: the store reachable, today's trades against the limit, and the
Upstox token's state. Raises StoreUnavailable when the database cannot be read."""
from __future__ import annotations

from openalgo_gtt.services.tokens import TokenProvider
from openalgo_gtt.services.trade_limit import DailyTradeLimit
from openalgo_gtt.store.unit_of_work import Store, StoreUnavailable

__all__ = ["HealthCheck", "StoreUnavailable"]


class HealthCheck:
    def __init__(self, store: Store, broker_name: str, limit: DailyTradeLimit, tokens: TokenProvider):
        self._store = store
        self._broker_name = broker_name
        self._limit = limit
        self._tokens = tokens

    def report(self) -> dict:
        self._store.ping()
        body = {"status": "ok", "service": "openalgo-gtt", "broker": self._broker_name,
                "today_trade_count": self._limit.today_count(), "daily_trade_limit": self._limit.limit,
                "database": "ok"}
        if self._broker_name == "upstox":
            body.update(self._tokens.describe())
        return body
