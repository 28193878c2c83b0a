"""The sandbox's paper account as OpenAlgo's books: orderbook, tradebook, positionbook, funds;
cancelling an open paper order (cancelorder); and the funds check of a place or a modify
(issue 27, docs/paper.md).

The orders, trades and positions are the sandbox broker's (brokers/sandbox/paper.py, written in
the transaction of the fire, tick or cancel that made them); this module only reads and words
them, and asks the broker to cancel.
Funds are computed when asked (domain/paper.py `account`), from the store in one transaction.
On Upstox and Kite every book answers 501: this gateway is about GTTs, not their orders.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Callable

from openalgo_gtt.brokers.base import Broker, PaperAccount
from openalgo_gtt.domain.clock import IST, ist_today
from openalgo_gtt.domain.paper import (
    ORDER_CANCELLED, ORDER_COMPLETE, ORDER_OPEN, Commitment, Funds, PaperOrder, account, check_funds,
    openalgo_product, rupees, trigger_margin,
)
from openalgo_gtt.domain.records import RecordedTrigger
from openalgo_gtt.services.answers import ApiError
from openalgo_gtt.store.unit_of_work import Store, UnitOfWork

SANDBOX_ONLY = ("sandbox only: orderbook, tradebook, positionbook and funds show the sandbox's paper account; "
                "on {broker} this gateway handles GTTs only (use the broker's own app for orders and funds)")


class SandboxOnly(ApiError):
    def __init__(self, broker: str) -> None:
        super().__init__(501, SANDBOX_ONLY.format(broker={"kite": "Kite"}.get(broker, "Upstox")))


class OrderNotFound(ApiError):
    def __init__(self, order_id: str) -> None:
        super().__init__(404, f"No paper order with orderid {order_id}")


class OrderNotOpen(ApiError):
    """Only an open order can be cancelled; the answer names the state it is in."""

    def __init__(self, order: PaperOrder) -> None:
        why = " (a DAY order: its day ended)" if order.status == ORDER_CANCELLED and order.day_over_at(
            order.updated_at) else ""
        super().__init__(400, f"order {order.order_id} cannot be cancelled: it is {order.status}{why}",
                         order_status=order.status)


def _paisa(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def _stamp(at: datetime) -> str:
    """OpenAlgo's time format, in IST: 07-Dec-2026 14:05:09."""
    return at.astimezone(IST).strftime("%d-%b-%Y %H:%M:%S")


class PaperBook:
    def __init__(self, broker: Broker, store: Store, capital: Decimal, broker_name: str, *,
                 today: Callable[[], date] | None = None) -> None:
        self._broker = broker
        # The IST trading day whose trade counter row places take (services/trade_limit.py).
        self._today = today or (lambda: ist_today(store.clock.now()))
        self._store = store
        self._capital = capital
        self._broker_name = broker_name

    @property
    def enabled(self) -> bool:
        return isinstance(self._broker, PaperAccount)

    def _account(self) -> PaperAccount:
        if not isinstance(self._broker, PaperAccount):
            raise SandboxOnly(self._broker_name)
        return self._broker

    # ----- the books -------------------------------------------------------------------------

    def orderbook(self) -> dict:
        now = self._store.clock.now()
        # An open order whose day ended is cancelled (the sandbox writes it so on its next write).
        orders = [o.cancelled(now) if o.day_over(now) else o for o in self._account().paper_orders()]
        return {
            "orders": [_order_entry(order) for order in reversed(orders)],  # newest first, as brokers list them
            "statistics": {
                "total_buy_orders": sum(1 for o in orders if o.side == "BUY"),
                "total_sell_orders": sum(1 for o in orders if o.side == "SELL"),
                "total_completed_orders": sum(1 for o in orders if o.status == ORDER_COMPLETE),
                "total_open_orders": sum(1 for o in orders if o.status == ORDER_OPEN),
                "total_rejected_orders": 0,
            },
        }

    def tradebook(self) -> list[dict]:
        return [
            {"action": t.side, "symbol": t.symbol, "exchange": t.exchange, "orderid": t.order_id,
             "product": openalgo_product(t.product, t.exchange), "quantity": t.quantity,
             "average_price": t.price, "trade_value": _paisa(t.value), "timestamp": _stamp(t.at)}
            for t in reversed(self._account().paper_trades())
        ]

    def positionbook(self) -> list[dict]:
        positions = self._account().paper_positions()
        prices = self._prices([p.instrument_key for p in positions])
        answer = []
        for p in positions:
            ltp = prices.get(p.instrument_key)
            unrealised = p.unrealised(ltp)
            answer.append({
                "symbol": p.symbol, "exchange": p.exchange, "product": openalgo_product(p.product, p.exchange),
                "quantity": p.quantity, "average_price": rupees(p.average_price),
                "ltp": ltp, "pnl": _paisa(p.realised + unrealised),
                "realised_pnl": _paisa(p.realised), "unrealised_pnl": _paisa(unrealised),
            })
        return answer

    def funds(self) -> dict:
        self._account()
        commitments, positions, open_orders = self._store.paper_account()
        funds = account(self._capital, positions, open_orders, commitments,
                        self._prices([p.instrument_key for p in positions if p.quantity]), now=self._store.clock.now())
        return _funds_entry(funds)

    def cancel_order(self, order_id: str) -> str:
        """Cancel an open paper order by hand (OpenAlgo's cancelorder): the broker's one write
        transaction changes it, and its margin is free from that commit on."""
        order, cancelled = self._account().cancel_paper_order(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if not cancelled:
            raise OrderNotOpen(order)
        return order.order_id

    def _prices(self, keys: list[str]) -> dict[str, Decimal]:
        if not keys:
            return {}
        return {key: quote.last_price for key, quote in self._broker.quotes(sorted(set(keys))).items()}

    # ----- the place's check -----------------------------------------------------------------

    def check_place(self, uow: UnitOfWork, intent: dict, attempt_id: int) -> None:
        """Refuse (InsufficientFunds, a 400) a place the account cannot fund, in the unit of work
        that begins its attempt: its margin is blocked by that attempt from then on."""
        if not self.enabled:
            return
        order = intent.get("order") or {}
        new = Commitment(order.get("trigger_type", "single"), order.get("product", ""), order.get("exchange", ""),
                         order.get("symbol", ""), tuple(order.get("legs") or ()))
        commitments, positions, open_orders = uow.paper_account(exclude_attempt=attempt_id)
        check_funds(trigger_margin(new.trigger_type, new.product, new.exchange, new.symbol, new.legs),
                    account(self._capital, positions, open_orders, commitments, now=self._store.clock.now()))


    def check_modify(self, recorded: RecordedTrigger, legs: list[dict]) -> bool:
        """Refuse a modify whose new legs the account cannot fund, counting the margin the
        trigger blocks now as free (it is replaced). Serialised with places as a place's own
        check is: in a unit of work holding the day's trade counter row. One that blocks more
        than before holds its new legs on the record in that same unit of work, before the
        broker is called, so a place that takes the turn next counts them (True: the caller
        gives the old legs back with `release_modify` should the broker call fail). One that
        blocks less keeps the old, larger legs until the modify is recorded."""
        if not self.enabled:
            return False
        with self._store.unit_of_work() as uow:
            uow.hold_trade_turn(self._today())
            commitments, positions, open_orders = uow.paper_account()
            others = [c for c in commitments if c.trigger_id != recorded.trigger_id]
            if len(others) == len(commitments):
                return False  # it blocks nothing now (a bracket whose entry was sent: only its exits change)
            (now,) = [c for c in commitments if c.trigger_id == recorded.trigger_id]
            needs = trigger_margin(recorded.trigger_type, recorded.product, recorded.exchange, recorded.symbol, legs)
            check_funds(needs, account(self._capital, positions, open_orders, others, now=self._store.clock.now()))
            if needs <= trigger_margin(now.trigger_type, now.product, now.exchange, now.symbol, now.legs):
                return False
            uow.hold_legs(recorded.trigger_id, legs)
            return True

    def release_modify(self, recorded: RecordedTrigger) -> None:
        """The broker refused a modify whose margin `check_modify` held: the record's legs back."""
        with self._store.unit_of_work() as uow:
            uow.hold_legs(recorded.trigger_id, list(recorded.legs))


def _order_entry(order: PaperOrder) -> dict:
    return {
        "action": order.side, "symbol": order.symbol, "exchange": order.exchange, "orderid": order.order_id,
        "product": openalgo_product(order.product, order.exchange), "quantity": order.quantity,
        "price": order.price, "pricetype": order.pricetype, "order_status": order.status,
        "trigger_price": order.trigger_price, "average_price": order.average_price or Decimal(0),
        "timestamp": _stamp(order.created_at), "gtt_id": order.gtt_id, "strategy": order.strategy.lower(),
    }


def _funds_entry(funds: Funds) -> dict:
    return {
        "availablecash": rupees(funds.available), "collateral": "0.00", "m2mrealized": rupees(funds.realised),
        "m2munrealized": rupees(funds.unrealised), "utiliseddebits": rupees(funds.used),
    }
