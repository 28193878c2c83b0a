"""One classification of broker rule statuses (domain/rule_status.py), and every part of the
gateway that judges a status agreeing with it: the order book's "live", a GTT's status, the OCO
pair, the watcher's events, the sandbox's own rules, and the refusals of a cancel."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from openalgo_gtt.brokers.sandbox.model import Rule
from openalgo_gtt.domain import model
from openalgo_gtt.domain.aggregate import fired_part
from openalgo_gtt.domain.book import gtt_status
from openalgo_gtt.domain.model import BrokerGtt, RuleState, RuleStatus
from openalgo_gtt.domain.oco import pair_status
from openalgo_gtt.domain.rule_status import GONE, Phase, phase
from openalgo_gtt.domain.watch import Watched, observe

EXPECTED = {
    "SCHEDULED": Phase.WAITING, "PENDING": Phase.WAITING, "INACTIVE": Phase.WAITING,
    "TRIGGERED": Phase.FIRED, "OPEN": Phase.FIRED, "COMPLETED": Phase.FIRED,
    "FAILED": Phase.FAILED, "EXPIRED": Phase.EXPIRED, "CANCELLED": Phase.CANCELLED,
}
NOW = datetime(2026, 12, 2, 11, 33, 12, tzinfo=timezone.utc)


def test_every_status_the_model_names_has_a_phase():
    assert {status.value for status in model.RuleStatus} == set(EXPECTED)
    for status in model.RuleStatus:
        assert phase(status) is not Phase.UNKNOWN, status
        assert phase(status) is EXPECTED[status.value]
        assert phase(status.value) is phase(status)  # the wire's plain strings read the same


def test_absence_is_fired_and_anything_else_unknown():
    assert phase(GONE) is Phase.FIRED  # Upstox's list omits completed GTTs
    assert phase("PARTIALLY_SOMETHING") is Phase.UNKNOWN and phase(None) is Phase.UNKNOWN


def one_rule(status, strategy="ENTRY"):
    rule = RuleState(strategy=strategy, trigger_type="BELOW", trigger_price=Decimal("9"), transaction_type="SELL",
                     status=status)
    return BrokerGtt(gtt_id="GTT-1", type="SINGLE", instrument_key="NSE_EQ|X", segment="NSE_EQ",
                     trading_symbol="X", quantity=1, product="D", rules=(rule,), updated_at=NOW)


@pytest.mark.parametrize("status", list(RuleStatus))
def test_every_judge_of_a_status_agrees_with_its_phase(status):
    waiting, fired = phase(status) is Phase.WAITING, phase(status) is Phase.FIRED
    gtt = one_rule(status)
    # The order book's live GTT, and a GTT's status.
    assert gtt.can_fire is waiting
    assert (gtt_status(gtt) == "active") is waiting and (gtt_status(gtt) == "triggered") is fired
    # An OCO pair stays active only while both legs wait; a leg that fired triggers it.
    assert (pair_status(status, RuleStatus.SCHEDULED) == "active") is waiting
    assert (pair_status(status, RuleStatus.SCHEDULED) == "triggered") is fired
    # The watcher: a waiting rule is no change; a fired one is a "triggered" event.
    watched = Watched("GTT-1", "single", ["GTT-1"], "X", "NSE", "SELL", 1, [], "active", None, {})
    change = observe(watched, [gtt], NOW)
    assert (change is None) is waiting
    assert (change is not None and [e.kind for e in change.events] == ["triggered"]) is fired
    # A cancel or modify is refused once it fired.
    assert (fired_part("single", ["GTT-1"], [gtt]) is not None) is fired


@pytest.mark.parametrize("status", list(RuleStatus))
def test_a_watched_pair_cancels_its_other_leg_exactly_when_a_leg_stops_waiting(status):
    def leg(gtt_id, rule_status):
        return BrokerGtt(gtt_id=gtt_id, type="SINGLE", instrument_key="NSE_EQ|X", segment="NSE_EQ",
                         trading_symbol="X", quantity=1, product="D", rules=(RuleState(
                             "ENTRY", "BELOW", Decimal("9"), "SELL", rule_status),))

    pair = Watched("OCO-1", "two-leg", ["GTT-1", "GTT-2"], "X", "NSE", "SELL", 1, [], "active", None, {})
    change = observe(pair, [leg("GTT-1", status), leg("GTT-2", "SCHEDULED")], NOW)
    to_cancel = change.to_cancel if change is not None else []
    # INACTIVE waits too: it once ended the pair, and the other leg was cancelled.
    assert to_cancel == ([] if phase(status) is Phase.WAITING else ["GTT-2"])


def test_the_sandbox_works_on_waiting_rules_and_on_a_resting_child_order():
    for status in RuleStatus:
        rule = Rule(strategy="ENTRY", trigger_type="BELOW", trigger_price=Decimal("9"), transaction_type="SELL",
                    status=status)
        assert rule.live is (phase(status) is Phase.WAITING or status == RuleStatus.OPEN)
