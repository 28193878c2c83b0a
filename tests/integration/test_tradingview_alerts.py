"""The TradingView alert messages of the docs (docs/tradingview.md, and the README's one), sent verbatim as TradingView sends them: text/plain,
with the placeholders filled the way TradingView fills them (action lower case, contracts as
"1.0", the exchange as "NSE", tickers such as IDEA and NIFTY1!), against the sandbox broker."""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from openalgo_gtt.store.instruments import index as index_module

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
TRADINGVIEW_PAGE = REPO / "docs" / "tradingview.md"


def alerts_in(page: Path) -> dict[str, str]:
    """name -> the message block that follows `<!-- tradingview-alert: name -->` in `page`."""
    text = page.read_text(encoding="utf-8")
    found = re.findall(r"<!-- tradingview-alert: (\w+) -->\s*```json\n(.*?)```", text, re.S)
    return {name: body for name, body in found}


def readme_alerts() -> dict[str, str]:
    """The docs' alerts (the README shows the SINGLE one: the same message, checked below)."""
    return alerts_in(TRADINGVIEW_PAGE)


def filled(message: str, key: str, *, ticker: str, action: str, contracts: str, close: str) -> str:
    for placeholder, value in (("{{ticker}}", ticker), ("{{exchange}}", "NSE"),
                               ("{{strategy.order.action}}", action),
                               ("{{strategy.order.contracts}}", contracts), ("{{close}}", close),
                               ("YOUR_API_KEY", key)):
        message = message.replace(placeholder, value)
    assert "{{" not in message
    return message


@pytest.fixture
def tv(gateway, api_key, monkeypatch):
    from openalgo_gtt.app import create_app
    from openalgo_gtt.store.instruments import ensure_instruments

    monkeypatch.setattr(index_module, "ist_today", lambda: date(2026, 12, 1))  # the sample's NIFTY future is live
    ensure_instruments(gateway.engine)
    gateway.instruments.refresh(force=True)
    client = create_app(gateway=gateway).test_client()

    class TradingView:
        key = api_key

        def alert(self, message: str):
            return client.post("/api/v1/placegtt", data=message.encode(), content_type="text/plain")

        def post(self, path, body):
            return client.post(f"/api/v1/{path}", json={"apikey": api_key, **body})

        def tick(self, symbol, ltp, exchange="NSE"):
            answer = self.post("sandbox/ticks", {"ticks": [{"symbol": symbol, "exchange": exchange, "ltp": ltp}]})
            assert answer.status_code == 200, answer.get_json()

    return TradingView()


def test_the_readme_shows_the_docs_single_alert():
    assert alerts_in(README) == {"single": readme_alerts()["single"]}


def test_the_docs_have_the_three_alerts():
    alerts = readme_alerts()
    assert set(alerts) == {"single", "oco", "bracket"}
    for message in alerts.values():
        for placeholder in ("{{ticker}}", "{{exchange}}", "{{strategy.order.action}}", "{{strategy.order.contracts}}"):
            assert placeholder in message


def test_the_single_alert(tv):
    tv.tick("IDEA", 9.50)
    message = filled(readme_alerts()["single"], tv.key, ticker="IDEA", action="buy", contracts="1.0", close="9.55")
    answer = tv.alert(message)
    assert answer.status_code == 200, answer.get_json()
    placed = answer.get_json()
    assert placed["status"] == "success" and placed["mode"] == "analyze" and placed["entry"] == 9.55
    entry = tv.post("gttorderstatus", {"trigger_id": placed["trigger_id"]}).get_json()["data"]
    assert entry["symbol"] == "IDEA" and entry["trigger_type"] == "single"
    assert entry["legs"][0]["action"] == "BUY" and entry["legs"][0]["quantity"] == 1


def test_the_oco_exit_alert(tv):
    tv.tick("IDEA", 9.50)
    message = filled(readme_alerts()["oco"], tv.key, ticker="IDEA", action="sell", contracts="1.0", close="9.50")
    answer = tv.alert(message)
    assert answer.status_code == 200, answer.get_json()
    placed = answer.get_json()
    assert placed["trigger_id"].startswith("OCO-") and placed["mode"] == "analyze" and placed["trade_count"] == 1
    assert placed["stoploss_trigger"] < 9.50 < placed["target_trigger"]
    entry = tv.post("gttorderstatus", {"trigger_id": placed["trigger_id"]}).get_json()["data"]
    assert entry["trigger_type"] == "two-leg" and {leg["action"] for leg in entry["legs"]} == {"SELL"}


def test_the_bracket_alert_on_a_continuous_future(tv):
    tv.tick("NIFTY1!", 24500)  # the tick endpoint resolves TradingView's ticker too
    message = filled(readme_alerts()["bracket"], tv.key, ticker="NIFTY1!", action="buy", contracts="75.0",
                     close="24500")
    answer = tv.alert(message)
    assert answer.status_code == 200, answer.get_json()
    placed = answer.get_json()
    assert placed["contract"] == "NIFTY29DEC26FUT" and placed["mode"] == "analyze"
    assert placed["stoploss"] < placed["entry"] < placed["target"]
    entry = tv.post("gttorderstatus", {"trigger_id": placed["trigger_id"]}).get_json()["data"]
    assert entry["symbol"] == "NIFTY29DEC26FUT" and entry["exchange"] == "NFO" and entry["trigger_type"] == "bracket"


def test_the_bracket_alert_on_a_stock(tv):
    tv.tick("IDEA", 9.50)
    message = filled(readme_alerts()["bracket"], tv.key, ticker="IDEA", action="buy", contracts="1.0", close="9.50")
    answer = tv.alert(message)
    assert answer.status_code == 200, answer.get_json()
    assert "contract" not in answer.get_json()


def test_an_alert_is_json_once_filled():
    for name, message in readme_alerts().items():
        json.loads(filled(message, "k", ticker="IDEA", action="buy", contracts="1.0", close="9.5")), name
