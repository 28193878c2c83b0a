"""The fill of a fired GTT on the page (issue 27): its row in the GTT table says what was bought,
its details give each leg's fill, and the "triggered" message carries it. On the sandbox, whose
paper order fills at once when the price allows."""
from __future__ import annotations

import re

from openalgo_gtt.domain.notifications import render
from tests.integration.test_page_sessions import app, client, sign_in  # noqa: F401 - fixtures


def test_a_fired_gtts_row_and_details_show_its_fill(client, app, api_key):  # noqa: F811
    sign_in(client, api_key)

    def api(path, **body):
        answer = client.post(f"/api/v1/{path}", json={"apikey": api_key, **body})
        assert answer.status_code == 200, answer.text
        return answer.json

    api("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 10}])
    trigger_id = api("placegtt", exchange="NSE", symbol="IDEA", action="BUY", product="CNC", quantity=100,
                     trigger_type="SINGLE", price=9.5, triggerprice_sl=9.5)["trigger_id"]
    assert "bought" not in client.get("/ui/gtts?status=all").text  # nothing fired, nothing filled
    api("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.4}])  # fires and fills at 9.50

    table = client.get("/ui/gtts?status=all").text
    assert re.search(r'<small class="fill">bought 100 IDEA at 9.50</small>', table), table
    detail = client.get(f"/ui/gtt?trigger_id={trigger_id}").text
    assert "<th scope=\"col\">Fill</th>" in detail and "<td>COMPLETE: 100 at 9.50</td>" in detail

    gateway = app.extensions["openalgo_gtt"]
    (triggered,) = [render(event) for event, _ in gateway.store.outbox.events_for(trigger_id)
                    if event.kind == "triggered"]
    assert "bought 100 IDEA at 9.50" in triggered.body.splitlines()
