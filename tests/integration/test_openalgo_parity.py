"""What an OpenAlgo user relies on (issue 26), through the Flask app on the sandbox broker and on
the fake Upstox: unknown trigger ids are 404 "No active GTT with trigger_id ...", a trailing slash
is the route, `updated_at` is "" until a change, `strategy` is shown, the book is newest first
(active first with "all"), "1e1" is a quantity of 10, and a modify keeps the GTT's own type."""
from __future__ import annotations

import json

import pytest

UNKNOWN_IDS = ["123456", "GTT-C99999999999999", "OCO-C99999999999999"]
SINGLE = {"strategy": "alert-7", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
          "product": "CNC", "quantity": 10, "pricetype": "LIMIT", "price": 9.61, "triggerprice_tg": 9.61}
OCO = {"strategy": "exit-1", "trigger_type": "OCO", "exchange": "NSE", "symbol": "IDEA", "action": "SELL",
       "product": "CNC", "quantity": 10, "triggerprice_sl": 9.0, "stoploss": 8.95, "triggerprice_tg": 10.2,
       "target": 10.25}


def client_of(api):
    return api.client


def modify_body(trigger_id, **fields):
    return {"trigger_id": trigger_id, "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "product": "CNC",
            "quantity": 10, "price": 9.7, "triggerprice_tg": 9.7, **fields}


@pytest.mark.parametrize("trigger_id", UNKNOWN_IDS)
@pytest.mark.parametrize("route", ["cancelgttorder", "modifygttorder", "gttorderstatus"])
def test_an_unknown_trigger_id_is_a_404_naming_it_on_the_sandbox(api, route, trigger_id):
    answer = api(route, **modify_body(trigger_id))
    assert answer.status_code == 404, answer.get_json()
    assert answer.get_json()["message"] == f"No active GTT with trigger_id {trigger_id}"


@pytest.mark.parametrize("trigger_id", UNKNOWN_IDS)
@pytest.mark.parametrize("route", ["cancelgttorder", "modifygttorder", "gttorderstatus"])
def test_an_unknown_trigger_id_is_a_404_naming_it_on_upstox(upstox_client, upstox_key, route, trigger_id):
    body = {"apikey": upstox_key, **modify_body(trigger_id)}
    answer = upstox_client.post(f"/api/v1/{route}", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 404, answer.get_json()
    assert answer.get_json()["message"] == f"No active GTT with trigger_id {trigger_id}"


def test_a_trailing_slash_is_the_route_itself(api):
    placed = api("placegttorder/", **SINGLE)
    assert placed.status_code == 200, placed.get_json()
    book = api("gttorderbook/")
    assert [e["trigger_id"] for e in book.get_json()["data"]] == [placed.get_json()["trigger_id"]]
    assert api("ping//").status_code == 404  # one slash is forgiven, not any number
    other_method = client_of(api).get("/api/v1/ping/")
    assert other_method.status_code == 405 and "Location" not in other_method.headers  # served, never redirected


def test_updated_at_is_empty_until_a_change_and_strategy_is_shown(api):
    single = api("placegttorder", **SINGLE).get_json()["trigger_id"]
    pair = api("placegttorder", **OCO).get_json()["trigger_id"]
    book = {e["trigger_id"]: e for e in api("gttorderbook").get_json()["data"]}
    assert book[single]["updated_at"] == "" and book[pair]["updated_at"] == ""
    assert book[single]["created_at"] != ""
    assert (book[single]["strategy"], book[pair]["strategy"]) == ("alert-7", "exit-1")
    status = api("gttorderstatus", trigger_id=single).get_json()["data"]
    assert status["updated_at"] == "" and status["strategy"] == "alert-7"
    assert api("gttorderstatus", trigger_id=pair).get_json()["data"]["strategy"] == "exit-1"

    assert api("modifygttorder", **modify_body(single, trigger_type="SINGLE")).status_code == 200
    changed = {e["trigger_id"]: e for e in api("gttorderbook").get_json()["data"]}[single]
    assert changed["updated_at"] != "" and changed["updated_at"] >= changed["created_at"]


def test_the_book_is_newest_first_and_with_all_active_ones_first(api):
    ids = []
    for price in (9.61, 9.62, 9.63, 9.64):
        placed = api("placegttorder", **{**SINGLE, "triggerprice_tg": price, "price": price})
        ids.append(placed.get_json()["trigger_id"])  # within one second, ids in order break the tie
    assert api("cancelgttorder", trigger_id=ids[3]).status_code == 200
    assert api("cancelgttorder", trigger_id=ids[1]).status_code == 200
    active = [e["trigger_id"] for e in api("gttorderbook").get_json()["data"]]
    assert active == [ids[2], ids[0]]
    every = [(e["trigger_id"], e["status"]) for e in api("gttorderbook", status="all").get_json()["data"]]
    assert every == [(ids[2], "active"), (ids[0], "active"), (ids[3], "cancelled"), (ids[1], "cancelled")]


@pytest.mark.parametrize("quantity,accepted", [("1e1", 10), (1e1, 10), ("1.5E1", 15), (" 2e0 ", 2), ("1e-1", None),
                                               ("1.5", None), ("1_0", None), (True, None), ("0x10", None),
                                               ("1e999", None)])
def test_a_quantity_in_exponent_notation_is_accepted_when_whole(api, gateway, quantity, accepted):
    answer = api("placegttorder", **{**SINGLE, "quantity": quantity})
    if accepted is None:
        assert answer.status_code == 400 and "quantity" in answer.get_json()["message"]
        return
    assert answer.status_code == 200, answer.get_json()
    assert gateway.orders.get(answer.get_json()["trigger_id"]).quantity == accepted


def test_a_modify_without_trigger_type_keeps_the_gtts_own_type(api):
    pair = api("placegttorder", **OCO).get_json()["trigger_id"]
    body = {k: v for k, v in OCO.items() if k != "trigger_type"}
    answer = api("modifygttorder", trigger_id=pair, **{**body, "triggerprice_tg": 10.4, "target": 10.45})
    assert answer.status_code == 200, answer.get_json()
    entry = api("gttorderstatus", trigger_id=pair).get_json()["data"]
    assert entry["trigger_type"] == "two-leg" and entry["trigger_prices"] == [9.0, 10.4]
    single = api("placegttorder", **SINGLE).get_json()["trigger_id"]
    kept = api("modifygttorder", **{k: v for k, v in modify_body(single).items()})
    assert kept.status_code == 200, kept.get_json()
    # Stated, the type must still be the GTT's own: a modify never changes it.
    changed = api("modifygttorder", **modify_body(pair, action="SELL", trigger_type="SINGLE"))
    assert changed.status_code == 400 and "cannot change" in changed.get_json()["message"]


@pytest.mark.parametrize("trigger_id", UNKNOWN_IDS)
@pytest.mark.parametrize("route", ["cancelgttorder", "modifygttorder", "gttorderstatus"])
def test_an_unknown_trigger_id_is_a_404_naming_it_on_kite(kite_client, route, trigger_id):
    client, key = kite_client
    answer = client.post(f"/api/v1/{route}", data=json.dumps({"apikey": key, **modify_body(trigger_id)}),
                         content_type="application/json")
    assert answer.status_code == 404, answer.get_json()
    assert answer.get_json()["message"] == f"No active GTT with trigger_id {trigger_id}"


# The modify bodies docs/api.md gives, one per type, exactly (trigger_type left out: kept).
DOCUMENTED_MODIFY = {
    "SINGLE": ({**SINGLE}, {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "product": "CNC", "quantity": 20,
                            "triggerprice_tg": 9.7, "price": 9.7}, [9.7]),
    "OCO": ({**OCO}, {"exchange": "NSE", "symbol": "IDEA", "action": "SELL", "product": "CNC", "quantity": 10,
                      "triggerprice_sl": 8.9, "stoploss": 8.85, "triggerprice_tg": 10.4, "target": 10.45}, [8.9, 10.4]),
    "BRACKET": ({"trigger_type": "BRACKET", "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "product": "CNC",
                 "quantity": 10, "entry_mode": "manual", "entry_value": 9.8},
                {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "product": "CNC", "quantity": 10,
                 "entry_mode": "manual", "entry_value": 9.9, "target_type": "manual", "target_value": 10.3,
                 "sl_type": "manual", "sl_value": 9.6}, [9.6, 9.9, 10.3]),
}


@pytest.mark.parametrize("kind", DOCUMENTED_MODIFY)
def test_the_documented_modify_body_of_each_type_works(api, kind):
    place, modify, triggers = DOCUMENTED_MODIFY[kind]
    trigger_id = api("placegttorder", **place).get_json()["trigger_id"]
    answer = api("modifygttorder", trigger_id=trigger_id, **modify)
    assert answer.status_code == 200, answer.get_json()
    entry = api("gttorderstatus", trigger_id=trigger_id).get_json()["data"]
    assert entry["trigger_prices"] == triggers and entry["legs"][0]["quantity"] == modify["quantity"]


def test_queue_on_a_modify_is_ignored_as_any_unknown_field_is(api):
    """`queue` is a place's field (a modify is never queued): on a modify it is an unknown field,
    ignored whatever its value, as an alert template's extras are; on a place it is still read."""
    single = api("placegttorder", **SINGLE).get_json()["trigger_id"]
    answers = {}
    for price, extra in ((9.70, {"colour": "not-a-flag"}), (9.71, {"queue": "not-a-flag"}), (9.72, {"queue": False}),
                         (9.73, {"queue": ""})):
        answer = api("modifygttorder", **modify_body(single, price=price, triggerprice_tg=price, **extra))
        assert answer.status_code == 200, (extra, answer.get_json())
        assert api("gttorderstatus", trigger_id=single).get_json()["data"]["trigger_prices"] == [price]
        answers[price] = {k: v for k, v in answer.get_json().items() if k not in ("entry", "request_id")}
    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1, answers  # one kind of answer
    refused = api("placegttorder", **{**SINGLE, "queue": "not-a-flag"})
    assert refused.status_code == 400 and "queue" in refused.get_json()["message"]
