"""Issue 14 §6: a watcher poll costs what changed, not what is live. Against the fake Upstox,
with the statements the gateway's engine runs counted."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import event

SINGLE = {"strategy": "Python", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
          "product": "CNC", "quantity": 10, "pricetype": "LIMIT", "price": 0.0}
OCO = {"strategy": "Python", "trigger_type": "OCO", "exchange": "NSE", "symbol": "INFY", "action": "SELL",
       "product": "CNC", "quantity": 5, "pricetype": "LIMIT", "price": 0.0, "triggerprice_sl": 1480.0,
       "triggerprice_tg": 1620.0}


@pytest.fixture
def post(upstox_client, upstox_key):
    def send(path, body):
        answer = upstox_client.post(f"/api/v1/{path}", data=json.dumps({"apikey": upstox_key, **body}),
                                    content_type="application/json")
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    return send


@pytest.fixture
def statements(upstox_gateway):
    """Every statement the gateway's engine runs, and every commit, while collecting."""
    seen = {"sql": [], "commits": 0}
    engine = upstox_gateway.engine

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        seen["sql"].append(statement)
        seen.setdefault("in_commit", []).append(seen["commits"])  # which transaction it ran in

    def on_commit(conn):
        seen["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    yield seen
    event.remove(engine, "before_cursor_execute", on_execute)
    event.remove(engine, "commit", on_commit)


WATCHED_TABLES = ("gtt_orders", "gtt_legs", "notify_events", "notify_deliveries")


def writes(seen):
    """The writes to what the watcher keeps (the lost-places check purges expired request
    records on its own, a constant statement per poll: services/attempts.py)."""
    return [s.split(None, 1)[0].upper() for s in seen["sql"]
            if s.split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE") and any(t in s for t in WATCHED_TABLES)]


def test_a_poll_with_nothing_changed_writes_nothing(upstox_gateway, post, statements, monkeypatch):
    monkeypatch.setattr(upstox_gateway.trade_limit, "limit", 1000)
    for i in range(20):
        post("placegtt", {**SINGLE, "triggerprice_tg": 9.61 + i / 100})
    pair = post("placegtt", OCO)["trigger_id"]
    upstox_gateway.watcher.sync()  # the first pass after the places
    statements["sql"].clear()
    statements["commits"] = 0
    report = upstox_gateway.watcher.sync()
    assert report.statuses_changed == [] and report.pairs_settled == []
    assert writes(statements) == []
    reads = [s for s in statements["sql"] if s.lstrip().upper().startswith("SELECT") and any(t in s for t in WATCHED_TABLES)]
    assert len(reads) == 3  # the live triggers, and the OCO pairs' ids and legs, whatever their number
    assert pair


def test_a_poll_writes_the_changed_triggers_in_one_transaction(upstox_gateway, post, statements, fake_upstox,
                                                                monkeypatch):
    monkeypatch.setattr(upstox_gateway.trade_limit, "limit", 1000)
    ids = [post("placegtt", {**SINGLE, "triggerprice_tg": 9.61 + i / 100})["trigger_id"] for i in range(10)]
    upstox_gateway.watcher.sync()
    fake_upstox.set_rule_status(ids[3], "ENTRY", "TRIGGERED", order_id="251202000300")
    fake_upstox.set_rule_status(ids[7], "ENTRY", "FAILED", message="Insufficient funds")
    statements["sql"].clear()
    statements["in_commit"] = []
    report = upstox_gateway.watcher.sync()
    assert sorted(report.statuses_changed) == sorted([ids[3], ids[7]])
    assert writes(statements) == ["UPDATE", "INSERT", "UPDATE", "INSERT"]  # each trigger, and its event
    in_commit = [n for sql, n in zip(statements["sql"], statements["in_commit"][-len(statements["sql"]):])
                 if sql.split(None, 1)[0].upper() in ("INSERT", "UPDATE") and any(t in sql for t in WATCHED_TABLES)]
    assert len(set(in_commit)) == 1  # one transaction
    assert upstox_gateway.orders.get(ids[7]).status_message == "Insufficient funds"
    statements["sql"].clear()
    upstox_gateway.watcher.sync()
    assert writes(statements) == []  # recorded once
