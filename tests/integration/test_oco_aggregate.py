"""An OCO pair and a bracket are one trigger to their caller (issue 24): a leg's id names its pair,
a cancel never leaves one leg live, and nothing any part of which fired is cancelled or modified.
In-process, on the sandbox, the fake Upstox and the fake Kite."""
from __future__ import annotations

import json

import pytest


OCO_SELL = {
    "strategy": "Python", "trigger_type": "OCO", "exchange": "NSE", "symbol": "INFY", "action": "SELL",
    "product": "CNC", "quantity": 5, "pricetype": "LIMIT", "price": 0.0, "triggerprice_sl": 1480.0,
    "triggerprice_tg": 1620.0,
}


def api(client, key):
    def send(path, body=None, **fields):
        return client.post(f"/api/v1/{path}", data=json.dumps({"apikey": key, **(body or {}), **fields}),
                           content_type="application/json")

    return send


def placed(answer):
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["trigger_id"]


def events(gateway, trigger_id):
    return [event["event"] for event in gateway.gtts.events(trigger_id)]


# -- the sandbox ---------------------------------------------------------------------------------

@pytest.fixture
def sandbox(gateway):
    from openalgo_gtt.app import create_app
    from openalgo_gtt.store.instruments import ensure_instruments

    ensure_instruments(gateway.engine)
    gateway.instruments.refresh(force=True)
    post = api(create_app(gateway=gateway).test_client(), gateway.api_keys.create("tester"))
    assert post("sandbox/ticks", ticks=[{"symbol": "INFY", "exchange": "NSE", "ltp": 1550}]).status_code == 200
    return post


def tick(post, ltp):
    answer = post("sandbox/ticks", ticks=[{"symbol": "INFY", "exchange": "NSE", "ltp": ltp}])
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["fired"]


def test_on_the_sandbox_cancelling_by_a_leg_id_cancels_the_whole_pair(sandbox, gateway):
    trigger_id = placed(sandbox("placegtt", OCO_SELL))
    lower, upper = gateway.orders.get(trigger_id).broker_ids
    answer = sandbox("cancelgtt", trigger_id=lower)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["trigger_id"] == trigger_id and trigger_id in answer.get_json()["message"]
    assert {gateway.broker.get_gtt(b).rules[0].status for b in (lower, upper)} == {"CANCELLED"}
    assert tick(sandbox, 1630) == [] and tick(sandbox, 1470) == []  # neither leg can fire any more
    assert gateway.orders.get(trigger_id).status == "cancelled"


def test_on_the_sandbox_a_pair_whose_leg_fired_cannot_be_cancelled(sandbox, gateway):
    trigger_id = placed(sandbox("placegtt", OCO_SELL))
    lower, upper = gateway.orders.get(trigger_id).broker_ids
    (fill,) = tick(sandbox, 1625)
    assert fill["gtt_id"] == upper
    for asked in (trigger_id, lower, upper):
        refused = sandbox("cancelgtt", trigger_id=asked)
        assert refused.status_code == 400, refused.get_json()
        message = refused.get_json()["message"]
        assert f"{trigger_id} cannot be cancelled" in message and f"target leg {upper} fired at " in message
        assert refused.get_json()["fired_gtt"] == upper and refused.get_json()["fired_at"]
    recorded = gateway.orders.get(trigger_id)
    assert recorded.status == "triggered" and recorded.cancelled_at is None
    assert "cancelled" not in events(gateway, trigger_id)


def test_on_the_sandbox_a_legs_status_names_its_pair(sandbox, gateway):
    trigger_id = placed(sandbox("placegtt", OCO_SELL))
    lower, upper = gateway.orders.get(trigger_id).broker_ids
    data = sandbox("gttorderstatus", trigger_id=lower).get_json()["data"]
    assert (data["trigger_id"], data["pair_trigger_id"], data["role"]) == (lower, trigger_id, "stoploss")
    assert data["trigger_type"] == "two-leg" and data["status"] == "active" and data["pair_status"] == "active"
    assert [leg["role"] for leg in data["legs"]] == ["stoploss"]
    tick(sandbox, 1470)
    data = sandbox("gttorderstatus", trigger_id=upper).get_json()["data"]
    assert (data["pair_trigger_id"], data["role"], data["status"], data["pair_status"]) == (
        trigger_id, "target", "cancelled", "triggered")
    assert data["legs"][0]["message"] == f"cancelled by the gateway: the other leg ({lower}) fired"
    assert "triggered" in [event["event"] for event in data["events"]]  # the pair's events


# -- the fake Upstox -----------------------------------------------------------------------------

@pytest.fixture
def upstox(upstox_client, upstox_key):
    return api(upstox_client, upstox_key)


def leg_status(fake, broker_id):
    return fake.gtt(broker_id)["rules"][0]["status"]


def test_on_upstox_cancelling_by_a_leg_id_cancels_both_legs(upstox, fake_upstox, upstox_gateway):
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    answer = upstox("cancelgtt", trigger_id=upper)
    assert answer.status_code == 200 and answer.get_json()["trigger_id"] == trigger_id
    assert (leg_status(fake_upstox, lower), leg_status(fake_upstox, upper)) == ("CANCELLED", "CANCELLED")
    assert upstox_gateway.orders.get(trigger_id).status == "cancelled"
    assert events(upstox_gateway, trigger_id).count("cancelled") == 1


def test_on_upstox_modifying_by_a_leg_id_is_refused_naming_the_pair(upstox, fake_upstox, upstox_gateway):
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, _ = upstox_gateway.orders.get(trigger_id).broker_ids
    refused = upstox("modifygtt", {**OCO_SELL, "trigger_id": lower, "triggerprice_sl": 1490, "triggerprice_tg": 1610})
    assert refused.status_code == 400
    assert refused.get_json()["pair_trigger_id"] == trigger_id and f"modify {trigger_id} instead" in \
        refused.get_json()["message"]
    assert sorted(float(g["rules"][0]["trigger_price"]) for g in fake_upstox.gtts()) == [1480.0, 1620.0]
    assert not fake_upstox.calls_to("gtt.modify")


def test_on_upstox_a_fire_the_watcher_has_not_seen_yet_refuses_the_cancel(upstox, fake_upstox, upstox_gateway):
    """The check reads Upstox first: the record still says active when the leg has fired."""
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    fake_upstox.set_rule_status(lower, "ENTRY", "TRIGGERED", order_id="251202000777")
    assert upstox_gateway.orders.get(trigger_id).status == "active"
    refused = upstox("cancelgtt", trigger_id=trigger_id)
    assert refused.status_code == 400
    message = refused.get_json()["message"]
    assert f"stop-loss leg {lower} fired" in message and "order 251202000777" in message
    # What Upstox showed is recorded as the watcher would (the other leg cancelled), never as a cancel.
    assert leg_status(fake_upstox, upper) == "CANCELLED"
    recorded = upstox_gateway.orders.get(trigger_id)
    assert recorded.status == "triggered" and recorded.cancelled_at is None
    assert "cancelled" not in events(upstox_gateway, trigger_id)
    again = upstox("modifygtt", {**OCO_SELL, "trigger_id": trigger_id, "triggerprice_sl": 1490})
    assert again.status_code == 400 and f"{trigger_id} cannot be modified" in again.get_json()["message"]
    assert upstox("cancelgtt", trigger_id=upper).status_code == 400


def test_on_upstox_a_fired_single_and_a_bracket_whose_entry_fired_are_not_cancelled(upstox, fake_upstox,
                                                                                     upstox_gateway):
    single = placed(upstox("placegtt", {**OCO_SELL, "trigger_type": "SINGLE", "triggerprice_sl": 0}))
    bracket = placed(upstox("placegtt", {"trigger_type": "BRACKET", "exchange": "NSE", "symbol": "IDEA",
                                         "action": "BUY", "product": "CNC", "quantity": 10}))
    fake_upstox.set_rule_status(single, "ENTRY", "COMPLETED", order_id="251202000001")
    fake_upstox.set_rule_status(bracket, "ENTRY", "COMPLETED", order_id="251202000002")
    fake_upstox.set_rule_status(bracket, "TARGET", "SCHEDULED")
    fake_upstox.set_rule_status(bracket, "STOPLOSS", "SCHEDULED")
    refused = upstox("cancelgtt", trigger_id=single)
    assert refused.status_code == 400 and f"{single} cannot be cancelled: it fired" in refused.get_json()["message"]
    refused = upstox("cancelgtt", trigger_id=bracket)
    assert refused.status_code == 400
    assert f"{bracket} cannot be cancelled: its entry fired" in refused.get_json()["message"]
    assert "target and stop-loss stay at the broker" in refused.get_json()["message"]
    # The exits are still live at Upstox, protecting the position.
    assert {r["strategy"]: r["status"] for r in fake_upstox.gtt(bracket)["rules"]} == {
        "ENTRY": "COMPLETED", "TARGET": "SCHEDULED", "STOPLOSS": "SCHEDULED"}
    assert upstox_gateway.orders.get(bracket).status == "active"
    assert not fake_upstox.calls_to("gtt.cancel")


def test_on_upstox_a_pair_whose_second_leg_cancel_fails_is_settled_at_once(upstox, fake_upstox, upstox_gateway):
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    original, calls = upstox_gateway.broker.cancel_gtt, []

    def second_leg_fails_once(broker_id):
        calls.append(broker_id)
        if broker_id == upper and calls.count(upper) == 1:
            fake_upstox.inject("gtt.cancel", "500")
        return original(broker_id)

    upstox_gateway.broker.cancel_gtt = second_leg_fails_once
    answer = upstox("cancelgtt", trigger_id=trigger_id)
    assert answer.status_code == 502  # the fault is answered, in time
    assert f"the leg {lower} of {trigger_id} was cancelled" in answer.get_json()["message"]
    assert calls == [lower, upper, upper]  # the watcher sent the failed cancel again at once
    assert (leg_status(fake_upstox, lower), leg_status(fake_upstox, upper)) == ("CANCELLED", "CANCELLED")
    assert upstox("cancelgtt", trigger_id=trigger_id).status_code == 200  # sent again: confirmed


def test_on_upstox_a_pair_half_cancelled_by_a_failing_broker_is_settled_not_left_with_a_live_leg(
        upstox, fake_upstox, upstox_gateway):
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    original, calls = upstox_gateway.broker.cancel_gtt, []

    def second_leg_fails_three_times(broker_id):
        calls.append(broker_id)
        if broker_id == upper and calls.count(upper) <= 3:
            fake_upstox.inject("gtt.cancel", "500")
        return original(broker_id)

    upstox_gateway.broker.cancel_gtt = second_leg_fails_three_times
    failed = upstox("cancelgtt", trigger_id=trigger_id)
    assert failed.status_code == 502
    assert f"the leg {lower} of {trigger_id} was cancelled" in failed.get_json()["message"]
    # The watcher settled the half-cancelled pair at once: its live leg was cancelled too.
    assert (leg_status(fake_upstox, lower), leg_status(fake_upstox, upper)) == ("CANCELLED", "CANCELLED")
    again = upstox("cancelgtt", trigger_id=trigger_id)
    assert again.status_code == 200 and upstox_gateway.orders.get(trigger_id).status == "cancelled"


def test_on_upstox_a_legs_status_names_its_pair(upstox, upstox_gateway):
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    data = upstox("gttorderstatus", trigger_id=upper).get_json()["data"]
    assert (data["trigger_id"], data["pair_trigger_id"], data["role"], data["trigger_type"]) == (
        upper, trigger_id, "target", "two-leg")
    assert data["trigger_prices"] == [1620.0]


# -- the watcher: never one leg live after its pass -----------------------------------------------

def test_the_watcher_sends_a_failed_cancel_again_within_its_pass(upstox, fake_upstox, upstox_gateway):
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    fake_upstox.set_rule_status(upper, "ENTRY", "TRIGGERED", order_id="251202000009")
    fake_upstox.inject("gtt.cancel", "500", times=2)
    assert upstox_gateway.watcher.sync().pairs_settled == [trigger_id]  # one pass: failed twice, then done
    assert leg_status(fake_upstox, lower) == "CANCELLED"
    assert upstox_gateway.orders.get(trigger_id).status == "triggered"


def test_a_pair_with_one_leg_cancelled_at_the_broker_is_settled_even_through_failures(upstox, fake_upstox,
                                                                                       upstox_gateway):
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    fake_upstox.set_rule_status(lower, "ENTRY", "CANCELLED")  # cancelled in the Upstox app
    fake_upstox.inject("gtt.cancel", "timeout", seconds=1.5, times=3)  # every try of this pass is lost
    assert upstox_gateway.watcher.sync().pairs_settled == []
    assert leg_status(fake_upstox, upper) == "SCHEDULED"
    assert upstox_gateway.orders.get(trigger_id).status == "active"  # left for the next pass, not forgotten
    assert upstox_gateway.watcher.sync().pairs_settled == [trigger_id]
    assert leg_status(fake_upstox, upper) == "CANCELLED"
    assert upstox_gateway.orders.get(trigger_id).status == "cancelled"


def test_a_cancel_whose_answer_was_lost_counts_as_done(upstox, fake_upstox, upstox_gateway):
    trigger_id = placed(upstox("placegtt", OCO_SELL))
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    fake_upstox.set_rule_status(lower, "ENTRY", "COMPLETED", order_id="251202000010")
    fake_upstox.inject("gtt.cancel", "500", after_work=True)  # Upstox cancelled it; the answer was lost
    assert upstox_gateway.watcher.sync().pairs_settled == [trigger_id]
    assert len(fake_upstox.calls_to("gtt.cancel")) == 1  # read again and found cancelled: not sent twice
    recorded_legs = upstox_gateway.orders.legs_by_broker_id([upper])
    assert recorded_legs[upper].message == f"cancelled by the gateway: the other leg ({lower}) fired"


# -- Kite: one two-leg GTT is the whole OCO -------------------------------------------------------

@pytest.fixture
def kite(fake_kite):
    return fake_kite  # with kite_gateway, from tests/integration/conftest.py


@pytest.fixture
def on_kite(kite_gateway):
    from openalgo_gtt.app import create_app

    return api(create_app(gateway=kite_gateway).test_client(), kite_gateway.api_keys.create("tester"))


def test_on_kite_the_two_leg_gtts_id_names_its_oco(on_kite, kite, kite_gateway):
    trigger_id = placed(on_kite("placegtt", OCO_SELL))
    (gtt,) = kite.gtts()
    kite_id = str(gtt["id"])
    data = on_kite("gttorderstatus", trigger_id=kite_id).get_json()["data"]
    assert (data["pair_trigger_id"], data["role"]) == (trigger_id, "two-leg")
    refused = on_kite("modifygtt", {**OCO_SELL, "trigger_id": kite_id, "triggerprice_sl": 1490})
    assert refused.status_code == 400 and refused.get_json()["pair_trigger_id"] == trigger_id
    answer = on_kite("cancelgtt", trigger_id=kite_id)
    assert answer.status_code == 200 and answer.get_json()["trigger_id"] == trigger_id
    assert kite.gtt(gtt["id"])["status"] == "deleted"
    assert kite_gateway.orders.get(trigger_id).status == "cancelled"


def test_on_kite_a_fired_two_leg_is_not_cancelled(on_kite, kite, kite_gateway):
    trigger_id = placed(on_kite("placegtt", OCO_SELL))
    (gtt,) = kite.gtts()
    kite.fire(gtt["id"], leg=1)
    refused = on_kite("cancelgtt", trigger_id=trigger_id)
    assert refused.status_code == 400
    assert f"{trigger_id} cannot be cancelled: its target leg fired at " in refused.get_json()["message"]
    assert kite.gtt(gtt["id"])["status"] == "triggered"
    assert kite_gateway.orders.get(trigger_id).status == "triggered"
