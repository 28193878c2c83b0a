from __future__ import annotations

import time

import pytest

from tests.scratch_verify.helpers import BRACKET, OCO, SINGLE, Gw
from tests.waiting import until


def at(gw, t):
    delay = gw.first_t + t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def run_schedule(gw, body, late, **kw):
    gw.fake.inject("gtt.place", "late", seconds=late)
    gw.first_t = time.monotonic()
    first = gw.post("placegtt", body, **kw)
    out = [first]
    for t in (1, 5, 11, 20):
        at(gw, t)
        out.append(gw.post("placegtt", body, **kw))
    return out


@pytest.mark.parametrize("late", [4, 14])
@pytest.mark.parametrize("kind", ["single", "oco", "bracket"])
def test_retry_schedule_after_late(server_factory, fake_upstox, database_url, late, kind):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2", OCO_POLL_SECONDS="2")
    body = {"single": SINGLE, "oco": OCO, "bracket": BRACKET}[kind]
    answers = run_schedule(gw, body, late, text_plain=True)
    time.sleep(3)
    summary = gw.summary()
    print(summary)
    live = gw.live()
    places = len(fake_upstox.calls_to("gtt.place"))
    print("live", [g["gtt_order_id"] for g in live], "places", places, "count", gw.count())
    assert answers[0].status_code in (504, 502) and answers[0].json().get("outcome_unknown") is True
    assert answers[1].status_code == 503 and answers[1].json().get("retry_after"), summary
    assert answers[-1].status_code == 200, summary
    legs = 2 if kind == "oco" else 1
    assert len(live) == legs, (live, summary)
    assert gw.count() == 1
    if late == 4 and kind != "oco":
        assert places == legs, summary
    gw.check_audit()
