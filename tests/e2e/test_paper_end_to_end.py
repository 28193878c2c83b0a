"""Paper trading on the sandbox (issue 27), through the real server and the `openalgo` SDK
unmodified: a fired GTT becomes an order, a trade and a position; funds block a GTT's margin and
refuse one the account cannot fund; an open order is cancelled by hand; on a live broker the four
books and cancelorder answer 501."""
from __future__ import annotations

import requests
from sqlalchemy import create_engine, func, select

from openalgo_gtt.store.models import AuditRecord
from openalgo_gtt.store.sandbox_models import SandboxGtt
from tests.waiting import until

from tests.e2e.sdk import openalgo_api
from tests.e2e.test_sandbox_end_to_end import start


def audit_rows(engine, answer) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AuditRecord)
                            .where(AuditRecord.request_id == answer.headers["X-Request-ID"])).scalar()


def test_the_sdk_shows_a_fired_gtt_as_an_order_a_trade_a_position_and_funds(server_factory):
    sandbox = start(server_factory, SANDBOX_CAPITAL="100000")
    client = openalgo_api()(api_key=sandbox.key, host=sandbox.server.url)
    sandbox.tick("IDEA", 10.00)
    funds = client.funds()
    assert funds["status"] == "success" and funds["mode"] == "analyze", funds
    assert funds["data"] == {"availablecash": "100000.00", "collateral": "0.00", "m2mrealized": "0.00",
                             "m2munrealized": "0.00", "utiliseddebits": "0.00"}

    placed = client.placegttorder(symbol="IDEA", exchange="NSE", action="BUY", trigger_type="SINGLE", product="CNC",
                                  quantity=1000, price=9.55, triggerprice_sl=9.55)
    assert placed["status"] == "success", placed
    # A CNC BUY blocks its full value from the place on: 1000 x 9.55.
    assert client.funds()["data"]["utiliseddebits"] == "9550.00"
    assert client.funds()["data"]["availablecash"] == "90450.00"
    assert client.orderbook()["data"]["orders"] == [] and client.tradebook()["data"] == []

    (fill,) = sandbox.tick("IDEA", 9.50)  # fires; 9.50 reaches the 9.55 limit at once
    (order,) = client.orderbook()["data"]["orders"]
    assert {k: order[k] for k in ("action", "symbol", "exchange", "orderid", "product", "quantity", "price",
                                  "pricetype", "order_status", "trigger_price")} == {
        "action": "BUY", "symbol": "IDEA", "exchange": "NSE", "orderid": fill["order_id"], "product": "CNC",
        "quantity": 1000, "price": 9.55, "pricetype": "LIMIT", "order_status": "complete", "trigger_price": 9.55}
    assert client.orderbook()["data"]["statistics"] == {
        "total_buy_orders": 1, "total_sell_orders": 0, "total_completed_orders": 1, "total_open_orders": 0,
        "total_rejected_orders": 0}
    (trade,) = client.tradebook()["data"]
    assert (trade["orderid"], trade["action"], trade["quantity"], trade["average_price"], trade["trade_value"]) == (
        fill["order_id"], "BUY", 1000, 9.55, 9550.0)
    sandbox.tick("IDEA", 9.75)
    (position,) = client.positionbook()["data"]
    assert (position["symbol"], position["exchange"], position["product"], position["quantity"],
            position["average_price"], position["ltp"], position["pnl"]) == ("IDEA", "NSE", "CNC", 1000, "9.55",
                                                                               9.75, 200.0)
    funds = client.funds()["data"]
    # The GTT's margin became the position's: nothing is blocked twice.
    assert funds == {"availablecash": "90450.00", "collateral": "0.00", "m2mrealized": "0.00",
                     "m2munrealized": "200.00", "utiliseddebits": "9550.00"}

    # Selling 400 at 9.80 realises (9.80 - 9.55) x 400 = 100.00, to the paisa.
    sold = client.placegttorder(symbol="IDEA", exchange="NSE", action="SELL", trigger_type="SINGLE", product="CNC",
                                quantity=400, price=9.80, triggerprice_tg=9.80)
    assert sold["status"] == "success", sold
    sandbox.tick("IDEA", 9.81)
    (position,) = client.positionbook()["data"]
    assert (position["quantity"], position["average_price"], position["ltp"]) == (600, "9.55", 9.81)
    funds = client.funds()["data"]
    assert (funds["m2mrealized"], funds["m2munrealized"], funds["utiliseddebits"], funds["availablecash"]) == (
        "100.00", "156.00", "5730.00", "94370.00")
    assert [t["action"] for t in client.tradebook()["data"]] == ["SELL", "BUY"]  # newest first


def test_the_sdk_cancels_an_open_paper_order_and_its_margin_is_free_again(server_factory):
    sandbox = start(server_factory, SANDBOX_CAPITAL="100000")
    client = openalgo_api()(api_key=sandbox.key, host=sandbox.server.url)
    sandbox.tick("IDEA", 10.00)
    placed = client.placegttorder(symbol="IDEA", exchange="NSE", action="BUY", trigger_type="SINGLE", product="CNC",
                                  quantity=1000, price=10.10, triggerprice_tg=10.10)
    assert placed["status"] == "success", placed
    (fill,) = sandbox.tick("IDEA", 10.20)  # fired above its 10.10 limit: the order rests open
    assert client.funds()["data"]["utiliseddebits"] == "10100.00"

    answer = client.cancelorder(order_id=fill["order_id"])
    assert {k: answer[k] for k in ("status", "mode", "orderid")} == {
        "status": "success", "mode": "analyze", "orderid": fill["order_id"]}, answer
    (order,) = client.orderbook()["data"]["orders"]
    assert order["order_status"] == "cancelled"
    assert client.funds()["data"]["utiliseddebits"] == "0.00"
    sandbox.tick("IDEA", 10.00)  # reaches its limit: a cancelled order never fills
    assert client.tradebook()["data"] == [] and client.positionbook()["data"] == []
    again = client.cancelorder(order_id=fill["order_id"])
    assert again["status"] == "error" and again["code"] == 400, again
    assert "cannot be cancelled: it is cancelled" in again["message"]
    unknown = client.cancelorder(order_id="261207999999999")
    assert unknown["code"] == 404, unknown


def test_a_gtt_the_account_cannot_fund_is_refused_and_cancelling_releases_its_margin(server_factory):
    sandbox = start(server_factory, SANDBOX_CAPITAL="10000")
    sandbox.tick("IDEA", 10.00)
    first = sandbox.place(symbol="IDEA", action="BUY", trigger_type="SINGLE", quantity=600, price=9.5,
                          triggerprice_sl=9.5)  # blocks 5700.00
    refused = sandbox.post("placegtt", exchange="NSE", product="CNC", symbol="IDEA", action="BUY",
                           trigger_type="SINGLE", quantity=500, price=9.5, triggerprice_sl=9.5)
    assert refused.status_code == 400, refused.text
    assert refused.json()["message"] == "insufficient funds: needs ₹4750.00, available ₹4300.00"
    engine = create_engine(sandbox.server.env["DATABASE_URL"])
    until(lambda: audit_rows(engine, refused) > 0, "the refusal's audit row")
    assert audit_rows(engine, refused) == 1
    with engine.connect() as conn:  # it reached no broker: the sandbox holds the first GTT only
        assert conn.execute(select(func.count()).select_from(SandboxGtt)).scalar() == 1
    engine.dispose()
    assert sandbox.post("gttorderbook").json()["data"][0]["trigger_id"] == first  # nothing else placed
    # A modify is held to the same account, counting what the trigger blocks now as free.
    bigger = sandbox.post("modifygtt", trigger_id=first, exchange="NSE", product="CNC", symbol="IDEA", action="BUY",
                          trigger_type="SINGLE", quantity=1100, price=9.5, triggerprice_sl=9.5)
    assert bigger.status_code == 400, bigger.text
    assert bigger.json()["message"] == "insufficient funds: needs ₹10450.00, available ₹10000.00"
    smaller = sandbox.post("modifygtt", trigger_id=first, exchange="NSE", product="CNC", symbol="IDEA",
                           action="BUY", trigger_type="SINGLE", quantity=1000, price=9.5, triggerprice_sl=9.5)
    assert smaller.status_code == 200, smaller.text
    assert sandbox.post("funds").json()["data"]["utiliseddebits"] == "9500.00"
    cancelled = sandbox.post("cancelgtt", trigger_id=first)
    assert cancelled.status_code == 200, cancelled.text
    assert sandbox.post("funds").json()["data"]["availablecash"] == "10000.00"
    assert sandbox.post("placegtt", exchange="NSE", product="CNC", symbol="IDEA", action="BUY", trigger_type="SINGLE",
                        quantity=500, price=9.5, triggerprice_sl=9.5).status_code == 200
    # An OCO SELL (exits of a holding) blocks nothing under CNC: the larger leg of nothing.
    assert sandbox.place(symbol="IDEA", action="SELL", trigger_type="OCO", quantity=500, triggerprice_sl=9.0,
                         triggerprice_tg=11.0, stoploss=8.9, target=11.1)
    assert sandbox.post("funds").json()["data"]["utiliseddebits"] == "4750.00"


def test_bad_requests_to_the_books_are_clear_json_errors_each_audited_once(server_factory):
    sandbox = start(server_factory)
    url = sandbox.server.url
    engine = create_engine(sandbox.server.env["DATABASE_URL"])
    answers = []
    for path in ("orderbook", "tradebook", "positionbook", "funds"):
        wrong = requests.post(f"{url}/api/v1/{path}", json={"apikey": "0" * 64}, timeout=5)
        assert (wrong.status_code, wrong.json()["message"]) == (403, "Invalid openalgo apikey")
        garbage = requests.post(f"{url}/api/v1/{path}", data="not json", timeout=5,
                                headers={"Content-Type": "application/json"})
        assert garbage.status_code == 400 and garbage.json()["status"] == "error"
        fine = sandbox.post(path)
        assert fine.status_code == 200 and fine.json()["status"] == "success"
        answers += [wrong, garbage, fine]
    for answer in answers:
        until(lambda answer=answer: audit_rows(engine, answer) > 0, "the request's audit row")
        assert audit_rows(engine, answer) == 1
    engine.dispose()


def test_on_a_live_broker_the_books_answer_501_sandbox_only(server_factory, fake_upstox):
    server = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url, OCO_POLL_SECONDS="600")
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    server.start()
    client = openalgo_api()(api_key=key, host=server.url)
    for method in (client.orderbook, client.tradebook, client.positionbook, client.funds,
                   lambda: client.cancelorder(order_id="261207000000001")):
        answer = method()
        assert answer["status"] == "error" and answer["code"] == 501, answer
        assert "sandbox only" in answer["message"], answer  # the SDK wraps a 5xx body in its message
    assert fake_upstox.calls == []  # nothing reached the broker


def test_a_brackets_margin_moves_to_its_position_when_the_entry_fills_and_frees_on_exit(server_factory):
    sandbox = start(server_factory, SANDBOX_CAPITAL="1000")
    sandbox.tick("IDEA", 9.50, open=9.50)
    sandbox.place(symbol="IDEA", action="BUY", trigger_type="BRACKET", quantity=10, entry_mode="manual",
                  entry_value=10.00, target_type="manual", target_value=10.50, sl_type="manual", sl_value=9.80)
    funds = lambda: sandbox.post("funds").json()["data"]  # noqa: E731
    assert (funds()["utiliseddebits"], funds()["availablecash"]) == ("100.00", "900.00")  # the entry: 10 x 10.00
    sandbox.tick("IDEA", 10.00)  # the entry fills at 10.00
    assert (funds()["utiliseddebits"], funds()["availablecash"]) == ("100.00", "900.00")  # now the position's
    sandbox.tick("IDEA", 10.55)  # the target fills at 10.50
    assert funds() == {"availablecash": "1005.00", "collateral": "0.00", "m2mrealized": "5.00",
                       "m2munrealized": "0.00", "utiliseddebits": "0.00"}
    (position,) = sandbox.post("positionbook").json()["data"]
    assert (position["quantity"], position["pnl"]) == (0, 5.0)


def test_a_restart_keeps_orders_trades_positions_and_funds(server_factory):
    sandbox = start(server_factory, SANDBOX_CAPITAL="50000")
    sandbox.tick("IDEA", 10.00)
    sandbox.place(symbol="IDEA", action="BUY", trigger_type="SINGLE", quantity=100, price=10.5, triggerprice_tg=10.5)
    sandbox.tick("IDEA", 10.60)  # fired above its 10.50 limit: the order rests open
    books = {path: sandbox.post(path).json()["data"] for path in ("orderbook", "tradebook", "positionbook", "funds")}
    assert books["orderbook"]["statistics"]["total_open_orders"] == 1 and books["tradebook"] == []
    assert books["funds"]["utiliseddebits"] == "1050.00"  # the open order holds the margin
    sandbox.server.stop()
    sandbox.server.start()
    assert {path: sandbox.post(path).json()["data"] for path in books} == books
    sandbox.tick("IDEA", 10.40)  # the order kept across the restart still fills, at its limit
    (position,) = sandbox.post("positionbook").json()["data"]
    assert (position["quantity"], position["average_price"], position["pnl"]) == (100, "10.50", -10.0)


def test_the_sandbox_trades_on_kites_instrument_master_too(server_factory, tmp_path):
    from tests.fakes.fake_kite import FakeKite

    sandbox = start(server_factory)
    master = tmp_path / "instruments.csv"
    master.write_bytes(FakeKite()._csv(""))  # Kite's instruments CSV, as GET /instruments answers it
    loaded = sandbox.server.cli("instruments", "load", "--kite", str(master)).stdout
    assert "loaded" in loaded and "NSE_EQ" in loaded

    sandbox.server.stop()  # (a running server picks a new master up within 5 s; a restart at once)
    sandbox.server.start()
    sandbox.tick("INFY", 1550)  # now NSE:INFY, Kite's key
    sandbox.place(symbol="INFY", action="BUY", trigger_type="SINGLE", quantity=2, price=1500, triggerprice_sl=1500)
    engine = create_engine(sandbox.server.env["DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(select(SandboxGtt.instrument_key)).scalars().all() == ["NSE:INFY"]
    engine.dispose()
    (fill,) = sandbox.tick("INFY", 1499)
    assert fill["symbol"] == "INFY" and fill["exchange"] == "NSE"
    (position,) = sandbox.post("positionbook").json()["data"]
    assert (position["symbol"], position["exchange"], position["quantity"], position["average_price"]) == (
        "INFY", "NSE", 2, "1500.00")
