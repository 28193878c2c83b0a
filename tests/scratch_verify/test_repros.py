from __future__ import annotations

import time

import pytest
import requests

from tests.scratch_verify.helpers import BRACKET, IDEA, OCO, SINGLE, Gw
from tests.waiting import until


def place_in_the_app(fake, price=9.61) -> str:
    answer = requests.post(f"{fake.url}/v3/order/gtt/place", headers={"Authorization": f"Bearer {fake.token}"},
                           json={"type": "SINGLE", "quantity": 1, "product": "D", "instrument_token": IDEA,
                                 "transaction_type": "BUY",
                                 "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": price}]},
                           timeout=5).json()
    return answer["data"]["gtt_order_ids"][0]


@pytest.mark.parametrize("fault,after_work", [("500", False), ("500", True), ("502_html", False), ("reset", False)])
def test_repro2_app_gtt_not_claimed(server_factory, fake_upstox, database_url, fault, after_work):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2")
    app = place_in_the_app(fake_upstox)
    time.sleep(1)
    fake_upstox.inject("gtt.place", fault, after_work=after_work)
    r = gw.post("placegttorder", SINGLE, text_plain=True)
    print(gw.summary(), app)
    assert r.json().get("trigger_id") != app
    if after_work:
        assert r.status_code == 200
    else:
        assert r.status_code in (502,)
    time.sleep(2.5)
    rows = [t for (t,) in gw.gtt_rows()]
    print("recorded", rows, "count", gw.count())
    assert app not in rows
    assert gw.count() == (1 if after_work else 1)  # settling keeps trade until window
    gw.check_audit()


def test_repro3_key_reuse_variants(server_factory, fake_upstox, database_url):
    gw = Gw(server_factory, fake_upstox, database_url)
    h = {"Idempotency-Key": "order-42"}
    placed = gw.post("placegtt", SINGLE, headers=h, text_plain=True)
    assert placed.status_code == 200
    tid = placed.json()["trigger_id"]
    results = {}
    results["cancel header"] = gw.post("cancelgtt", {"trigger_id": tid}, headers=h)
    results["cancel body"] = gw.post("cancelgttorder", {"trigger_id": tid, "idempotency_key": "order-42"})
    results["modify header"] = gw.post("modifygttorder", {**SINGLE, "trigger_id": tid, "quantity": 3}, headers=h)
    results["other body header"] = gw.post("placegttorder", {**SINGLE, "triggerprice_tg": 9.70}, headers=h)
    results["other body in body"] = gw.post("placegtt", {**SINGLE, "triggerprice_tg": 9.70, "idempotency_key": "order-42"})
    results["other trigger_type"] = gw.post("placegtt", OCO, headers=h)
    results["same body string nums"] = gw.post("placegtt", {**SINGLE, "quantity": "1", "triggerprice_tg": "9.610"}, headers=h, text_plain=True)
    results["same body body-key"] = gw.post("placegtt", {**SINGLE, "idempotency_key": "order-42"})
    results["header and body disagree"] = gw.post("placegtt", {**SINGLE, "idempotency_key": "order-43"}, headers=h)
    for k, r in results.items():
        print(k, r.status_code, r.text[:200])
    print("calls", len(fake_upstox.calls_to("gtt.place")), len(fake_upstox.calls_to("gtt.cancel")), len(fake_upstox.calls_to("gtt.modify")))
    for k in ("cancel header", "cancel body", "modify header", "other body header", "other body in body", "other trigger_type"):
        assert results[k].status_code == 422, (k, results[k].text)
    for k in ("same body string nums", "same body body-key"):
        assert results[k].status_code == 200 and results[k].json()["duplicate"] is True, (k, results[k].text)
    assert not fake_upstox.calls_to("gtt.cancel") and not fake_upstox.calls_to("gtt.modify")
    gw.check_audit()


@pytest.mark.parametrize("kind", ["single", "oco", "bracket"])
def test_repro5_duplicate_of_settled(server_factory, fake_upstox, database_url, kind):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="1", OCO_POLL_SECONDS="0.3")
    body = {"single": SINGLE, "oco": OCO, "bracket": BRACKET}[kind]
    fake_upstox.inject("gtt.place", "hang", after_work=True, seconds=3)
    first = gw.post("placegtt", body, text_plain=True)
    print(first.status_code, first.text)
    legs = 2 if kind == "oco" else 1
    until(lambda: gw.count() == 1 and len(gw.live()) == legs, "the GTT to exist")
    time.sleep(3.5)
    dup = gw.post("placegtt", body, text_plain=True)
    print(dup.status_code, dup.text)
    normal = gw.post("placegtt", {**body, "quantity": 2})
    print("normal", normal.text)
    b = dup.json()
    assert dup.status_code == 200 and b.get("duplicate") is True
    assert b.get("original_request_id") == first.headers["X-Request-ID"]
    missing = set(normal.json()) - set(b) - {"warnings"}
    assert not missing, missing
    assert len(fake_upstox.calls_to("gtt.place")) == legs + (2 if kind == "oco" else 1)
    gw.check_audit()


def test_limit1_late_lapses_then_other_place(server_factory, fake_upstox, database_url):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2", DAILY_TRADE_LIMIT="1", OCO_POLL_SECONDS="1")
    fake_upstox.inject("gtt.place", "late", seconds=14)
    t0 = time.monotonic()
    a = gw.post("placegtt", SINGLE)
    b1 = gw.post("placegtt", {**SINGLE, "triggerprice_tg": 9.70})  # limit held by settling A
    time.sleep(max(0, t0 + 11 - time.monotonic()))
    b2 = gw.post("placegtt", {**SINGLE, "triggerprice_tg": 9.70})
    time.sleep(max(0, t0 + 16 - time.monotonic()))
    a2 = gw.post("placegtt", SINGLE)
    time.sleep(max(0, t0 + 20 - time.monotonic()))
    a3 = gw.post("placegtt", SINGLE)
    time.sleep(3)
    print(gw.summary())
    live = gw.live()
    print("live", [(g["gtt_order_id"], g["rules"][0]["trigger_price"]) for g in live], "count", gw.count())
    print([(r.endpoint, r.http_status, r.error) for r in gw.audit_rows()])
    assert a.status_code == 504 and b1.status_code == 429
    assert len(live) <= 1 and gw.count() == len(live)
    gw.check_audit()


def test_limit2_two_late(server_factory, fake_upstox, database_url):
    gw = Gw(server_factory, fake_upstox, database_url, UPSTOX_TIMEOUT="2", DAILY_TRADE_LIMIT="2", OCO_POLL_SECONDS="1")
    fake_upstox.inject("gtt.place", "late", times=2, seconds=12)
    t0 = time.monotonic()
    a = gw.post("placegtt", SINGLE)
    b = gw.post("placegtt", {**SINGLE, "triggerprice_tg": 9.70})
    c1 = gw.post("placegtt", {**SINGLE, "triggerprice_tg": 9.80})  # 429 while both settle
    time.sleep(max(0, t0 + 10.5 - time.monotonic()))
    c = gw.post("placegtt", {**SINGLE, "triggerprice_tg": 9.80})
    d = gw.post("placegtt", {**SINGLE, "triggerprice_tg": 9.90})
    a2 = gw.post("placegtt", SINGLE)
    time.sleep(max(0, t0 + 20 - time.monotonic()))
    b2 = gw.post("placegtt", {**SINGLE, "triggerprice_tg": 9.70})
    time.sleep(3)
    print(gw.summary())
    live = gw.live()
    print("live", [(g["gtt_order_id"], g["rules"][0]["trigger_price"]) for g in live], "count", gw.count())
    print([(r.endpoint, r.http_status, r.error) for r in gw.audit_rows() if r.endpoint == "(late GTT)"])
    assert len(live) <= 2 and gw.count() == len(live)
    gw.check_audit()
