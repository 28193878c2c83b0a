"""The page's Positions section on the sandbox (GET /ui/positions): positions and the funds line,
signed in only, 204 when nothing changed."""
from __future__ import annotations

import re

from tests.integration.test_page_sessions import app, audit_rows, client, sign_in  # noqa: F401 - fixtures


def test_the_positions_section_shows_a_filled_gtt_and_the_funds_line(client, app, api_key):  # noqa: F811
    assert client.get("/ui/positions").status_code in (302, 303, 401, 403)  # not signed in: nothing shown
    sign_in(client, api_key)
    page = client.get("/").text
    assert 'id="positions"' in page and 'hx-get="/ui/positions"' in page
    empty = client.get("/ui/positions")
    assert empty.status_code == 200 and "No positions yet" in empty.text
    assert "Available ₹1000000.00 · Used ₹0.00" in empty.text

    def api(path, **body):
        answer = client.post(f"/api/v1/{path}", json={"apikey": api_key, **body})
        assert answer.status_code == 200, answer.text
        return answer.json

    api("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 10}])
    api("placegtt", exchange="NSE", symbol="IDEA", action="BUY", product="CNC", quantity=100, trigger_type="SINGLE",
        price=9.5, triggerprice_sl=9.5)
    api("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.4}])  # fires and fills at 9.50
    api("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.8}])
    shown = client.get("/ui/positions")
    cells = re.findall(r"<td>([^<]*)</td>", shown.text)
    assert cells == ["IDEA", "NSE", "CNC", "100", "9.50", "9.8", "30.00"], cells
    assert "Available ₹999050.00 · Used ₹950.00" in shown.text and "Unrealised P&amp;L ₹30.00" in shown.text
    seen = re.search(r"seen=([0-9a-f]+)", shown.text).group(1)
    assert client.get(f"/ui/positions?seen={seen}").status_code == 204  # nothing changed
    # The page's reads are not audited (as its GTT table, polled every 2 s); its actions are.
    assert [endpoint for endpoint, _, _ in audit_rows(app)] == [
        "/ui/signin", "/api/v1/sandbox/ticks", "/api/v1/placegtt", "/api/v1/sandbox/ticks", "/api/v1/sandbox/ticks"]
