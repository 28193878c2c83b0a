from __future__ import annotations

import time

import pytest

from tests.scratch_verify.helpers import SINGLE, Gw


@pytest.mark.parametrize("poll", ["1", "2"])
def test_when_does_trade_come_back(server_factory, fake_upstox, database_url, poll):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2", DAILY_TRADE_LIMIT="1", OCO_POLL_SECONDS=poll)
    fake_upstox.inject("gtt.place", "late", seconds=30)
    t0 = time.monotonic()
    a = gw.post("placegtt", SINGLE)
    seen = []
    while time.monotonic() - t0 < 25:
        c = gw.count()
        if not seen or seen[-1][1] != c:
            seen.append((round(time.monotonic() - t0, 2), c))
        time.sleep(0.2)
    print("count changes", seen)
    print("details calls", [round(t - fake_upstox.calls_to("gtt.place")[0][2], 2) for *_, t in fake_upstox.calls_to("gtt.details")])
    print(gw.server.output()[-3000:])
