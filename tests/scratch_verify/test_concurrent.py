from __future__ import annotations

import threading
import time

import pytest

from tests.scratch_verify.helpers import BRACKET, OCO, SINGLE, Gw
from tests.scratch_verify.test_after_work import nth_call_fault


@pytest.mark.parametrize("keyed", [False, True])
@pytest.mark.parametrize("kind", ["single", "bracket"])
def test_retry_while_first_in_flight(server_factory, fake_upstox, database_url, keyed, kind):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2", OCO_POLL_SECONDS="2")
    body = {"single": SINGLE, "bracket": BRACKET}[kind]
    hdr = {"Idempotency-Key": "tv-1"} if keyed else None
    fake_upstox.inject("gtt.place", "late", seconds=4)
    t0 = time.monotonic()
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("first", gw.post("placegtt", body, text_plain=True, headers=hdr)))
    th.start()
    time.sleep(1)
    second = gw.post("placegtt", body, text_plain=True, headers=hdr)
    t_second = time.monotonic() - t0
    th.join()
    schedule = []
    for t in (5, 11, 20):
        time.sleep(max(0, t0 + t - time.monotonic()))
        schedule.append(gw.post("placegtt", body, text_plain=True, headers=hdr))
    time.sleep(2.5)
    print(gw.summary(), "second answered at", round(t_second, 2))
    print("live", [g["gtt_order_id"] for g in gw.live()], "places", len(fake_upstox.calls_to("gtt.place")), "count", gw.count())
    assert second.status_code in (503, 504), second.text
    assert len(gw.live()) == 1 and gw.count() == 1 and len(fake_upstox.calls_to("gtt.place")) == 1
    assert schedule[-1].status_code == 200
    gw.check_audit()


@pytest.mark.parametrize("late", [4, 14])
def test_oco_second_leg_late(server_factory, fake_upstox, database_url, late):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2", OCO_POLL_SECONDS="2")
    nth_call_fault(fake_upstox, "gtt.place", 2, "late", False, late)
    t0 = time.monotonic()
    answers = [gw.post("placegtt", OCO, text_plain=True)]
    for t in (1, 5, 11, 20):
        time.sleep(max(0, t0 + t - time.monotonic()))
        answers.append(gw.post("placegtt", OCO, text_plain=True))
    time.sleep(3)
    print(gw.summary())
    allg = [(g["gtt_order_id"], g["rules"][0]["trigger_price"], g["rules"][0]["status"]) for g in fake_upstox.gtts()]
    print("all", allg, "count", gw.count())
    print([(r.endpoint, r.http_status, r.error) for r in gw.audit_rows() if r.endpoint.startswith("(")])
    assert len(gw.live()) == 2 and gw.count() == 1
    assert answers[-1].status_code == 200
    gw.check_audit()
