"""Which part of a trigger fired, and how a refusal to cancel or modify it reads
(domain/aggregate.py). Pure: no broker, no database."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from openalgo_gtt.domain.aggregate import fired_part, fired_refusal, leg_modify_refusal
from openalgo_gtt.domain.model import BrokerGtt, RuleState

FIRED_AT = datetime(2026, 12, 2, 11, 33, 12, tzinfo=timezone.utc)  # 17:03:12 IST


def gtt(gtt_id, *statuses, strategies=("ENTRY", "TARGET", "STOPLOSS"), updated_at=None, order_id=None):
    rules = tuple(RuleState(strategy, "BELOW", Decimal("9"), "SELL", status,
                            order_id=order_id if status in ("TRIGGERED", "COMPLETED") else None)
                  for strategy, status in zip(strategies, statuses))
    return BrokerGtt(gtt_id=gtt_id, type="SINGLE" if len(rules) == 1 else "MULTIPLE", instrument_key="NSE_EQ|X",
                     segment="NSE_EQ", trading_symbol="X", quantity=1, product="D", rules=rules,
                     updated_at=updated_at)


def test_a_pair_names_the_leg_that_fired_and_when():
    lower, upper = gtt("GTT-1", "CANCELLED"), gtt("GTT-2", "TRIGGERED", updated_at=FIRED_AT, order_id="77")
    fired = fired_part("two-leg", ["GTT-1", "GTT-2"], [lower, upper])
    assert (fired.broker_id, fired.role, fired.at, fired.order_id) == ("GTT-2", "target", FIRED_AT, "77")
    refusal = fired_refusal("OCO-1", "cancelled", fired, "two-leg")
    assert refusal.message == ("OCO-1 cannot be cancelled: its target leg GTT-2 fired at 2026-12-02 17:03:12 IST "
                               "(order 77); a fired leg cannot be undone, and the other leg is cancelled because of it")
    assert refusal.details == {"fired_gtt": "GTT-2", "fired_at": "2026-12-02 17:03:12"}


def test_a_pair_leg_the_broker_no_longer_lists_counts_as_fired_with_the_recorded_time():
    fired = fired_part("two-leg", ["GTT-1", "GTT-2"], [None, gtt("GTT-2", "SCHEDULED")], {"GTT-1": FIRED_AT})
    assert (fired.broker_id, fired.gone, fired.at) == ("GTT-1", True, FIRED_AT)
    message = fired_refusal("OCO-1", "modified", fired, "two-leg").message
    assert message.startswith("OCO-1 cannot be modified: its stop-loss leg GTT-1 is no longer listed at the broker")


def test_a_pair_with_both_legs_waiting_or_cancelled_has_not_fired():
    assert fired_part("two-leg", ["GTT-1", "GTT-2"], [gtt("GTT-1", "SCHEDULED"), gtt("GTT-2", "INACTIVE")]) is None
    assert fired_part("two-leg", ["GTT-1", "GTT-2"], [gtt("GTT-1", "CANCELLED"), gtt("GTT-2", "CANCELLED")]) is None


def test_a_bracket_whose_entry_fired_says_its_exits_stay():
    bracket = gtt("GTT-3", "COMPLETED", "SCHEDULED", "SCHEDULED", order_id="88")
    fired = fired_part("bracket", ["GTT-3"], [bracket], {"GTT-3": FIRED_AT})
    assert (fired.role, fired.at) == ("ENTRY", FIRED_AT)  # the broker gave no time: the recorded one
    message = fired_refusal("GTT-3", "cancelled", fired, "bracket").message
    assert message.startswith("GTT-3 cannot be cancelled: its entry fired at 2026-12-02 17:03:12 IST (order 88)")
    assert "its target and stop-loss stay at the broker to protect it" in message
    staged = fired_refusal("GTT-3", "cancelled", fired, "bracket", exit_id="5001").message
    assert "its exit OCO 5001 stays at the broker" in staged


def test_a_single_that_fired_at_an_unknown_time_says_so():
    fired = fired_part("single", ["GTT-4"], [gtt("GTT-4", "OPEN", strategies=("ENTRY",))])
    assert fired_refusal("GTT-4", "cancelled", fired, "single").message == (
        "GTT-4 cannot be cancelled: it fired (the broker gave no time); a fired GTT cannot be undone")
    assert fired_part("single", ["GTT-4"], [gtt("GTT-4", "INACTIVE", strategies=("ENTRY",))]) is None


def test_a_modify_by_a_legs_id_names_the_pair():
    refusal = leg_modify_refusal("GTT-1", "stoploss", "OCO-1")
    assert refusal.message.startswith("GTT-1 is the stop-loss leg of the OCO OCO-1: modify OCO-1 instead")
    assert refusal.details == {"pair_trigger_id": "OCO-1", "role": "stoploss"}
