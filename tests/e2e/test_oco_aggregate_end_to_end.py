"""An OCO is one trigger through the real server (`python run.py`), on the sandbox and on the fake
Upstox: a leg's id cancels the whole pair, a pair whose leg fired is not cancelled, and a leg's
status names its pair (issue 24)."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from openalgo_gtt.store.engine import make_engine
from openalgo_gtt.store.models import GttLeg
from tests.e2e.test_oco_end_to_end import start as start_on_upstox
from tests.waiting import until

OCO = {"symbol": "INFY", "exchange": "NSE", "action": "SELL", "trigger_type": "OCO", "product": "CNC",
       "quantity": 5, "price": 0, "triggerprice_sl": 1480, "triggerprice_tg": 1620}


class Caller:
    """A caller of one running server, with the database it writes (to learn a pair's leg ids)."""

    def __init__(self, server, key, database_url):
        self.server, self.key, self.database_url = server, key, database_url

    def post(self, path, **body):
        return requests.post(f"{self.server.url}/api/v1/{path}", json={"apikey": self.key, **body}, timeout=15)

    def place_oco(self) -> str:
        answer = self.post("placegtt", **OCO)
        assert answer.status_code == 200, answer.text
        return answer.json()["trigger_id"]

    def legs(self, trigger_id) -> dict[str, str]:
        """role -> broker id of a pair's legs (what tick answers and notifications show), once the
        pair is recorded (just after its place was answered)."""
        engine = make_engine(self.database_url)
        found: dict[str, str] = {}

        def recorded() -> bool:
            with engine.connect() as conn:
                rows = conn.execute(select(GttLeg.role, GttLeg.broker_id).where(GttLeg.trigger_id == trigger_id))
                found.update(rows.all())
            return len(found) == 2

        try:
            until(recorded, f"the legs of {trigger_id} recorded")
        finally:
            engine.dispose()
        return found

    def status(self, trigger_id) -> dict:
        answer = self.post("gttorderstatus", trigger_id=trigger_id)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    def tick(self, ltp) -> list[dict]:
        answer = self.post("sandbox/ticks", ticks=[{"symbol": "INFY", "exchange": "NSE", "ltp": ltp}])
        assert answer.status_code == 200, answer.text
        return answer.json()["fired"]


@pytest.fixture
def sandbox(server_factory, database_url) -> Caller:
    server = server_factory(OCO_POLL_SECONDS="600")  # the sandbox settles with each tick, not by polling
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    caller = Caller(server.start(), key, database_url)
    caller.tick(1550)
    return caller


@pytest.fixture
def upstox(server_factory, fake_upstox, database_url) -> Caller:
    server, key = start_on_upstox(server_factory, fake_upstox, poll="600")  # no poll: what the call reads counts
    return Caller(server, key, database_url)


def test_sandbox_cancel_by_a_leg_id_cancels_the_pair_and_no_leg_fires_after(sandbox):
    trigger_id = sandbox.place_oco()
    legs = sandbox.legs(trigger_id)
    answer = sandbox.post("cancelgtt", trigger_id=legs["stoploss"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["trigger_id"] == trigger_id and answer.json()["mode"] == "analyze"
    assert sandbox.tick(1630) == [] and sandbox.tick(1470) == []  # neither leg is live
    entry = sandbox.status(trigger_id)
    assert entry["status"] == "cancelled" and [leg["status"] for leg in entry["legs"]] == ["CANCELLED", "CANCELLED"]


def test_sandbox_cancel_after_a_fire_is_refused_and_a_legs_status_names_its_pair(sandbox):
    trigger_id = sandbox.place_oco()
    legs = sandbox.legs(trigger_id)
    (fill,) = sandbox.tick(1625)
    assert fill["gtt_id"] == legs["target"]
    refused = sandbox.post("cancelgtt", trigger_id=trigger_id)
    assert refused.status_code == 400, refused.text
    assert f"its target leg {legs['target']} fired at " in refused.json()["message"]
    assert sandbox.post("cancelgtt", trigger_id=fill["gtt_id"]).status_code == 400  # by the id the tick showed
    leg = sandbox.status(fill["gtt_id"])
    assert (leg["pair_trigger_id"], leg["role"], leg["status"], leg["pair_status"]) == (
        trigger_id, "target", "triggered", "triggered")
    entry = sandbox.status(trigger_id)
    assert entry["status"] == "triggered"
    assert "cancelled" not in [event["event"] for event in entry["events"]]


def test_upstox_cancel_by_a_leg_id_cancels_both_legs(upstox, fake_upstox):
    trigger_id = upstox.place_oco()
    legs = upstox.legs(trigger_id)
    answer = upstox.post("cancelgtt", trigger_id=legs["target"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["trigger_id"] == trigger_id and "mode" not in answer.json()
    assert [g["rules"][0]["status"] for g in fake_upstox.gtts()] == ["CANCELLED", "CANCELLED"]
    assert upstox.status(trigger_id)["status"] == "cancelled"


def test_upstox_cancel_after_a_fire_is_refused_and_a_legs_status_names_its_pair(upstox, fake_upstox):
    trigger_id = upstox.place_oco()
    legs = upstox.legs(trigger_id)
    leg = upstox.status(legs["stoploss"])
    assert (leg["pair_trigger_id"], leg["role"], leg["status"]) == (trigger_id, "stoploss", "active")
    fake_upstox.set_rule_status(legs["stoploss"], "ENTRY", "TRIGGERED", order_id="251202000123")
    # Nothing has polled (OCO_POLL_SECONDS=600) and no webhook came: the cancel reads Upstox itself.
    refused = upstox.post("cancelgtt", trigger_id=trigger_id)
    assert refused.status_code == 400, refused.text
    message = refused.json()["message"]
    assert f"its stop-loss leg {legs['stoploss']} fired" in message and "order 251202000123" in message
    statuses = {g["gtt_order_id"]: g["rules"][0]["status"] for g in fake_upstox.gtts()}
    assert statuses == {legs["stoploss"]: "TRIGGERED", legs["target"]: "CANCELLED"}  # never both live
    entry = upstox.status(trigger_id)
    assert entry["status"] == "triggered"
    assert "cancelled" not in [event["event"] for event in entry["events"]]
    assert upstox.status(legs["target"])["pair_status"] == "triggered"
