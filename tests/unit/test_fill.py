"""A fired leg's fill in a trader's words, and when an open order is asked about again
(domain/fill.py), and the messages that carry it (domain/notifications.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from openalgo_gtt.domain.fill import FOLLOW_FOR, LegFill, describe, fill_json, next_check, unknown_fill
from openalgo_gtt.domain.model import EventKind, EventLevel, OrderFill
from openalgo_gtt.domain.notifications import Event, render

T0 = datetime(2026, 12, 8, 4, 0, tzinfo=timezone.utc)


def leg(fill: OrderFill, checks: int = 1, checked_at: datetime = T0) -> LegFill:
    return LegFill("GTT-1", "single", "GTT-1", "2612080001", "BUY", 3, fill, checks, checked_at, T0)


def test_a_complete_order_reads_as_what_was_bought_or_sold():
    assert describe(OrderFill("COMPLETE", 3, Decimal("9.7")), "BUY", "IDEA", 3) == "bought 3 IDEA at 9.70"
    assert describe(OrderFill("COMPLETE", 5, Decimal("1620.05")), "SELL", "INFY", 5) == "sold 5 INFY at 1620.05"
    assert describe(OrderFill("COMPLETE", 100, Decimal("9.615")), "BUY", "IDEA", 100) == "bought 100 IDEA at 9.615"


def test_an_open_rejected_or_cancelled_order_says_so_and_what_filled():
    assert describe(OrderFill("OPEN", 0, None), "BUY", "IDEA", 3) == "order open at the broker, nothing filled yet"
    assert describe(OrderFill("OPEN", 1, Decimal("9.7")), "BUY", "IDEA", 3) == \
        "order open: bought 1 of 3 IDEA at 9.70 so far"
    assert describe(OrderFill("REJECTED", 0, None, "Insufficient funds"), "BUY", "IDEA", 3) == \
        "order rejected: Insufficient funds"
    assert describe(OrderFill("CANCELLED", 2, Decimal("9.7")), "SELL", "IDEA", 3) == \
        "order cancelled after it sold 2 of 3 IDEA at 9.70"
    assert describe(unknown_fill(), "BUY", "IDEA", 3) == "order not known at the broker yet"


def test_an_open_order_is_asked_again_less_and_less_often_and_not_after_a_day():
    open_fill = OrderFill("OPEN", 0, None)
    assert next_check(leg(open_fill, checks=1)) == T0 + timedelta(seconds=5)
    assert next_check(leg(open_fill, checks=2)) == T0 + timedelta(seconds=10)
    assert next_check(leg(open_fill, checks=4)) == T0 + timedelta(seconds=40)
    assert next_check(leg(open_fill, checks=30)) == T0 + timedelta(minutes=10)  # never rarer than that
    assert next_check(leg(unknown_fill(), checks=0)) == T0 + timedelta(seconds=5)
    assert next_check(leg(OrderFill("COMPLETE", 3, Decimal("9.7")))) is None  # final: never again
    assert next_check(leg(open_fill, checks=9, checked_at=T0 + FOLLOW_FOR)) is None  # its day is over


def test_the_triggered_message_carries_the_fill():
    event = Event(kind=EventKind.TRIGGERED, at=T0, trigger_id="GTT-1", symbol="IDEA", exchange="NSE", action="BUY",
                  quantity=3, triggers=("9.70",), direction="ABOVE", order_id="2612080001",
                  extra={"fill": fill_json(OrderFill("COMPLETE", 3, Decimal("9.70")))})
    message = render(Event.from_json(event.to_json()))  # as the outbox keeps it and the sender reads it
    assert message.title == "GTT triggered"
    assert message.body.splitlines()[:2] == ["BUY 3 IDEA (NSE) above 9.70 — GTT-1, order 2612080001",
                                              "bought 3 IDEA at 9.70"]


def test_an_order_that_ended_later_is_titled_by_how_it_ended():
    def done(fill):
        return render(Event(kind=EventKind.ORDER_DONE, at=T0, trigger_id="GTT-1", symbol="IDEA", action="SELL",
                            quantity=3, order_id="1", extra={"fill": fill_json(fill)}))

    filled = done(OrderFill("COMPLETE", 3, Decimal("10.5")))
    assert (filled.title, filled.level) == ("GTT order filled", EventLevel.SUCCESS)
    assert "sold 3 IDEA at 10.50" in filled.body
    rejected = done(OrderFill("REJECTED", 0, None, "RMS: margin"))
    assert (rejected.title, rejected.level) == ("GTT order rejected", EventLevel.FAILURE)
    assert "order rejected: RMS: margin" in rejected.body
    assert done(OrderFill("CANCELLED", 0, None)).title == "GTT order cancelled"
