from __future__ import annotations

import time

import pytest

from tests.scratch_verify.helpers import BRACKET, OCO, SINGLE, Gw


def nth_call_fault(fake, route, n, fault, after_work, seconds=None):
    """Fault the n-th (1-based) call to route from now on."""
    state = {"i": 0}

    def chaos(r):
        if r != route:
            return None
        state["i"] += 1
        return (fault, after_work, seconds) if state["i"] == n else None

    fake.chaos = chaos


@pytest.mark.parametrize("leg", [1, 2])
@pytest.mark.parametrize("kind", ["single", "oco", "bracket"])
def test_500_after_work_header_key(server_factory, fake_upstox, database_url, kind, leg):
    if kind != "oco" and leg == 2:
        pytest.skip()
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2", OCO_POLL_SECONDS="2")
    body = {"single": SINGLE, "oco": OCO, "bracket": BRACKET}[kind]
    nth_call_fault(fake_upstox, "gtt.place", leg, "500", True)
    hdr = {"Idempotency-Key": f"k-{kind}-{leg}"}
    first = gw.post("placegttorder", body, text_plain=True, headers=hdr)
    time.sleep(1)
    second = gw.post("placegttorder", body, text_plain=True, headers=hdr)
    time.sleep(5)
    third = gw.post("placegttorder", body, text_plain=True, headers=hdr)
    time.sleep(2.5)
    print(gw.summary())
    legs = 2 if kind == "oco" else 1
    live = gw.live()
    print("live", [g["gtt_order_id"] for g in live], "all", [(g["gtt_order_id"], [r["status"] for r in g["rules"]]) for g in fake_upstox.gtts()])
    assert first.status_code == 200, first.text
    assert second.json().get("duplicate") is True and second.json()["trigger_id"] == first.json()["trigger_id"]
    assert len(live) == legs and gw.count() == 1
    assert len(fake_upstox.calls_to("gtt.place")) == legs
    gw.check_audit()


@pytest.mark.parametrize("fault", ["500", "hang"])
@pytest.mark.parametrize("kind", ["single", "oco", "bracket"])
def test_modify_cancel_lost_answer(server_factory, fake_upstox, database_url, kind, fault):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2", OCO_POLL_SECONDS="2")
    body = {"single": SINGLE, "oco": OCO, "bracket": BRACKET}[kind]
    placed = gw.post("placegtt", body)
    assert placed.status_code == 200, placed.text
    tid = placed.json()["trigger_id"]
    mod = {**body, "trigger_id": tid, "quantity": 2, "idempotency_key": f"m-{kind}"}
    fake_upstox.inject("gtt.modify", fault, after_work=True, seconds=3)
    m1 = gw.post("modifygttorder", mod, text_plain=True)
    m2 = gw.post("modifygttorder", mod, text_plain=True)
    print("modify", m1.status_code, m1.text, m2.status_code, m2.text)
    st = gw.post("gttorderstatus", {"trigger_id": tid})
    print("status", st.text)
    quantities = {g["gtt_order_id"]: g["quantity"] for g in fake_upstox.gtts()}
    print("broker quantities", quantities)
    can = {"trigger_id": tid, "idempotency_key": f"c-{kind}"}
    fake_upstox.inject("gtt.cancel", fault, after_work=True, seconds=3)
    c1 = gw.post("cancelgttorder", can, text_plain=True)
    c2 = gw.post("cancelgttorder", can, text_plain=True)
    print("cancel", c1.status_code, c1.text, c2.status_code, c2.text)
    st = gw.post("gttorderstatus", {"trigger_id": tid})
    print("status", st.text)
    print(gw.summary())
    assert m2.status_code == 200, m2.text
    assert c2.status_code == 200, c2.text
    assert st.json()["data"]["status"] == "cancelled"
    assert not gw.live()
    gw.check_audit()
