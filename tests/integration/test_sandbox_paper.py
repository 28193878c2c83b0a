"""The sandbox's paper account on a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL):
fired rules become orders, prices fill them, fills are trades that move positions."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from openalgo_gtt.brokers.sandbox import SandboxBroker, Tick
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, BUY, ENTRY, IMMEDIATE, MULTIPLE, SELL, SINGLE, STOPLOSS, TARGET, GttRequest, GttRule,
)
from openalgo_gtt.store.models import Instrument
from openalgo_gtt.store.sandbox import SandboxRepository

D = Decimal
IDEA = "NSE_EQ|INE669E01016"


@pytest.fixture
def sessions(sessions):
    """The shared sessions (tests/integration/conftest.py), with IDEA listed."""
    with sessions.begin() as session:
        session.add(Instrument(instrument_key=IDEA, segment="NSE_EQ", exchange="NSE", symbol="IDEA",
                               trading_symbol="IDEA", lot_size=1, tick_size=D("0.01")))
    return sessions


def single(trigger_type: str, price: str, side: str = BUY, quantity: int = 1, market: bool = False) -> GttRequest:
    rule = GttRule(ENTRY, trigger_type, D(price), market_protection=5 if market else None)
    return GttRequest(SINGLE, IDEA, side, "D", quantity, (rule,))


def tick(broker, clock, *prices: str) -> list:
    fired = []
    for price in prices:
        clock.now += timedelta(seconds=1)
        fired += broker.apply_ticks([Tick(IDEA, D(price))])
    return fired


def orders(broker) -> list[tuple]:
    return [(o.side, o.pricetype, o.price, o.status, o.average_price) for o in broker.paper_orders()]


def position(broker):
    (only,) = broker.paper_positions()
    return only.quantity, only.average_price, only.realised


def test_a_limit_child_fills_at_its_price_and_the_position_keeps_exact_pnl(broker, clock):
    tick(broker, clock, "10.00")
    buy = broker.place_gtt(single(BELOW, "9.55", quantity=3))
    tick(broker, clock, "9.60")
    assert broker.paper_orders() == []  # not fired yet
    (event,) = tick(broker, clock, "9.50")  # fires, and 9.50 already reaches the 9.55 limit
    assert event.gtt_id == buy
    assert orders(broker) == [(BUY, "LIMIT", D("9.55"), "complete", D("9.55"))]
    (trade,) = broker.paper_trades()
    assert (trade.order_id, trade.side, trade.quantity, trade.price, trade.symbol, trade.exchange) == (
        event.order_id, BUY, 3, D("9.55"), "IDEA", "NSE")
    assert position(broker) == (3, D("9.55"), D(0))

    broker.place_gtt(single(ABOVE, "9.71", side=SELL, quantity=2))
    tick(broker, clock, "9.80")  # a SELL limit at 9.71 is reached by 9.80: filled at 9.71
    quantity, average, realised = position(broker)
    assert (quantity, average, realised) == (1, D("9.55"), D("0.32"))  # (9.71 - 9.55) x 2, to the paisa
    assert [t.price for t in broker.paper_trades()] == [D("9.55"), D("9.71")]


def test_a_limit_the_firing_price_jumped_past_rests_open_until_a_later_price_reaches_it(broker, clock):
    tick(broker, clock, "100")
    broker.place_gtt(single(ABOVE, "101", quantity=10))
    tick(broker, clock, "102")  # fired above the 101 limit: the order waits
    assert orders(broker) == [(BUY, "LIMIT", D("101"), "open", None)]
    assert broker.paper_trades() == [] and broker.paper_positions() == []
    tick(broker, clock, "101.50")
    assert orders(broker)[0][3] == "open"
    tick(broker, clock, "100.90")  # reaches it: filled at the limit, not at 100.90
    assert orders(broker) == [(BUY, "LIMIT", D("101"), "complete", D("101"))]
    assert position(broker) == (10, D("101"), D(0))


def test_a_market_child_fills_at_the_price_that_fired_it(broker, clock):
    tick(broker, clock, "100")
    broker.place_gtt(single(ABOVE, "101", quantity=4, market=True))
    tick(broker, clock, "102.35")
    assert orders(broker) == [(BUY, "MARKET", D(0), "complete", D("102.35"))]
    assert position(broker) == (4, D("102.35"), D(0))


def test_a_bracket_round_trip_realises_its_pnl_and_flattens(broker, clock):
    tick(broker, clock, "100")
    broker.place_gtt(GttRequest(MULTIPLE, IDEA, BUY, "D", 5, (
        GttRule(ENTRY, IMMEDIATE, D("100")), GttRule(TARGET, IMMEDIATE, D("110")),
        GttRule(STOPLOSS, IMMEDIATE, D("95")),
    )))  # the IMMEDIATE entry fills at once at 100: an order made outside any tick
    assert position(broker) == (5, D("100"), D(0))
    tick(broker, clock, "111")
    assert [(o.side, o.status, o.average_price) for o in broker.paper_orders()] == [
        (BUY, "complete", D("100")), (SELL, "complete", D("110"))]
    assert position(broker) == (0, D(0), D("50"))


def test_orders_trades_and_positions_survive_a_restart_and_an_open_order_still_fills(sessions, broker, clock):
    tick(broker, clock, "100")
    broker.place_gtt(single(ABOVE, "101", quantity=2))
    tick(broker, clock, "103")
    again = SandboxBroker(SandboxRepository(sessions), clock=clock)  # a restart, or a second process
    assert [o.status for o in again.paper_orders()] == ["open"]
    tick(again, clock, "100.50")
    assert [o.status for o in again.paper_orders()] == ["complete"]
    assert position(again) == (2, D("101"), D(0))
    tick(broker, clock, "99")  # the first process catches up: the order is not filled twice
    assert len(broker.paper_trades()) == 1 and position(broker) == (2, D("101"), D(0))


def test_the_watched_instruments_are_those_of_live_gtts_open_orders_and_open_positions(broker, clock):
    tick(broker, clock, "100")
    assert broker.watched_instruments() == []
    gtt_id = broker.place_gtt(single(ABOVE, "101", quantity=2))
    assert broker.watched_instruments() == [IDEA]  # a live GTT
    tick(broker, clock, "103")  # fired; its LIMIT at 101 rests open
    assert broker.get_gtt(gtt_id).can_fire is False and broker.watched_instruments() == [IDEA]  # the open order
    tick(broker, clock, "100")  # filled: an open position now
    assert broker.watched_instruments() == [IDEA]
    broker.place_gtt(single(ABOVE, "102", side=SELL, quantity=2))
    tick(broker, clock, "102.50")  # sold: flat, nothing live
    assert position(broker) == (0, D(0), D("2"))
    assert broker.watched_instruments() == []


def test_an_open_order_lives_for_its_day_then_is_cancelled_never_filled(broker, clock):
    tick(broker, clock, "100")
    broker.place_gtt(single(ABOVE, "101", quantity=2))
    tick(broker, clock, "103")  # fired above its limit: open
    assert orders(broker)[0][3] == "open"
    clock.now += timedelta(days=1)  # the next IST day
    tick(broker, clock, "100")  # would have reached it: too late, its day is over
    assert orders(broker) == [(BUY, "LIMIT", D("101"), "cancelled", None)]
    assert broker.paper_trades() == [] and broker.paper_positions() == []
    assert broker.watched_instruments() == []


def test_a_process_reuses_its_open_orders_only_while_no_other_process_wrote(sessions, broker, clock, caplog):
    """Each process keeps the open orders its last write left, to spare the query on the next
    one; another process's write in between (an order made, filled or cancelled there) makes it
    read them again, so nothing is missed or filled twice."""
    other = SandboxBroker(SandboxRepository(sessions), clock=clock)  # a second worker
    tick(broker, clock, "100")
    broker.place_gtt(single(ABOVE, "101", quantity=2))
    tick(broker, clock, "103")  # open at 101, made by `broker`
    other.place_gtt(single(ABOVE, "104", quantity=1))
    tick(other, clock, "105")  # a second open order (at 104), made by the other worker
    tick(broker, clock, "104")  # `broker` must know the other's order to fill it
    assert [(o.price, o.status) for o in broker.paper_orders()] == [(D("101"), "open"), (D("104"), "complete")]
    (first, _) = broker.paper_orders()
    assert other.cancel_paper_order(first.order_id)[1] is True
    tick(broker, clock, "100")  # would reach the cancelled order: `broker` must know it is gone
    assert [o.status for o in broker.paper_orders()] == ["cancelled", "complete"]
    assert len(broker.paper_trades()) == 1
    assert "sandbox state changed under this process" not in caplog.text  # read again, never a retry


def test_an_open_order_is_cancelled_by_hand_once(broker, clock):
    tick(broker, clock, "100")
    broker.place_gtt(single(ABOVE, "101", quantity=2))
    tick(broker, clock, "103")
    (order,) = broker.paper_orders()
    cancelled, done = broker.cancel_paper_order(order.order_id)
    assert (cancelled.status, done) == ("cancelled", True)
    assert broker.cancel_paper_order(order.order_id)[1] is False
    assert broker.cancel_paper_order("nope") == (None, False)
    tick(broker, clock, "100")
    assert broker.paper_trades() == [] and broker.watched_instruments() == []


def test_quotes_a_restart_reads_back_are_those_last_written_prices_opens_and_days(sessions, broker, clock):
    """A repeated price is not written again; a new price writes only the price; a new day's
    first price writes its open too: a restart reads each quote back as it was last set."""
    tick(broker, clock, "100")
    tick(broker, clock, "100", "100.5")
    clock.now += timedelta(days=1)
    tick(broker, clock, "99")  # the next IST day: its open is 99
    tick(broker, clock, "99.5")
    again = SandboxBroker(SandboxRepository(sessions), clock=clock)
    quote = again.quotes([IDEA])[IDEA]
    assert (quote.last_price, quote.open) == (D("99.5"), D("99"))
    assert quote == broker.quotes([IDEA])[IDEA]
