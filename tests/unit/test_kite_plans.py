"""Plans shaped by Kite's features: a child LIMIT price, a MARKET child as a protective LIMIT,
one native two-leg OCO, the staged bracket's entry, and Kite's refusals (MIS, trailing_gap)."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from openalgo_gtt.brokers.kite import KITE_FEATURES
from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.intent import PlaceIntent
from openalgo_gtt.domain.plan_bracket import plan_bracket
from openalgo_gtt.domain.plan_single import plan_single
from openalgo_gtt.domain.model import ABOVE, BELOW, ENTRY, NATIVE_OCO, SINGLE, STOPLOSS, TARGET
from openalgo_gtt.domain.oco import plan_two_leg
from openalgo_gtt.domain.symbols import InstrumentInfo

INFY = InstrumentInfo("NSE:INFY", "NSE_EQ", "NSE", "INFY", "INFY", "INFOSYS", "EQ", 1, D("0.05"), None, None, None)
INTENT = PlaceIntent(trigger_type="SINGLE", action="BUY", product="CNC", quantity=1, triggerprice_tg=D("1600"))


def test_single_takes_its_own_limit_price_or_the_trigger():
    plan = plan_single(replace(INTENT, price=D("1601")), INFY, features=KITE_FEATURES)
    (rule,) = plan.request.rules
    assert (rule.strategy, rule.trigger_type, rule.trigger_price, rule.price) == (ENTRY, ABOVE, D(1600), D(1601))
    assert plan.request.product == "CNC" and plan.legs[0]["price"] == D(1601) and not plan.warnings
    assert plan_single(INTENT, INFY, features=KITE_FEATURES).request.rules[0].price == D(1600)


def test_market_becomes_a_protective_limit_with_a_warning():
    buy = plan_single(replace(INTENT, pricetype="MARKET"), INFY, features=KITE_FEATURES)
    assert buy.request.rules[0].price == D("1680") and buy.request.rules[0].market_protection is None
    assert any("LIMIT only" in w and "1680" in w for w in buy.warnings)
    sell = plan_single(replace(INTENT, action="SELL", pricetype="MARKET", market_protection=2), INFY,
                       features=KITE_FEATURES)
    assert sell.request.rules[0].price == D("1568")


def test_oco_is_one_two_leg_request():
    intent = replace(INTENT, trigger_type="OCO", action="SELL", triggerprice_sl=D(1500), triggerprice_tg=D(1650),
                     stoploss=D(1499), target=D(1651))
    plan = plan_two_leg(intent, INFY, KITE_FEATURES)
    assert plan.request.type == NATIVE_OCO and plan.request.transaction_type == "SELL"
    assert [(r.strategy, r.trigger_type, r.trigger_price, r.price) for r in plan.request.rules] == [
        (STOPLOSS, BELOW, D(1500), D(1499)), (TARGET, ABOVE, D(1650), D(1651))]
    assert plan.prices == {"stoploss_trigger": D(1500), "target_trigger": D(1650)}


def test_bracket_is_its_entry_alone_with_the_exits_in_the_legs():
    intent = replace(INTENT, trigger_type="BRACKET", triggerprice_tg=D(0))
    plan = plan_bracket(intent, INFY, D(1540), D(1550), features=KITE_FEATURES)
    assert plan.request.type == SINGLE and [r.strategy for r in plan.request.rules] == [ENTRY]
    legs = {leg["role"]: leg for leg in plan.legs}
    assert (legs["target"]["action"], legs["target"]["price"]) == ("SELL", D("1617.60"))
    assert (legs["stoploss"]["action"], legs["stoploss"]["price"]) == ("SELL", D("1585.60"))


@pytest.mark.parametrize("change, words", [
    ({"product": "MIS"}, "product 'MIS' is not available for GTTs on Kite (use CNC, NRML)"),
    ({"trigger_type": "BRACKET", "triggerprice_tg": D(0), "trailing_gap": D(2)}, "trailing_gap has no Kite equivalent"),
])
def test_kite_refusals(change, words):
    intent = replace(INTENT, **change)
    with pytest.raises(DomainError, match=words.replace("(", r"\(").replace(")", r"\)")):
        if intent.trigger_type == "BRACKET":
            plan_bracket(intent, INFY, D(1540), D(1550), features=KITE_FEATURES)
        else:
            plan_single(intent, INFY, features=KITE_FEATURES)
