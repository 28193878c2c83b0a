"""The trader's page's forms as the API's bodies, and its rows as the book's entries (pure functions)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from openalgo_gtt.api.dashboard import forms
from openalgo_gtt.api.dashboard.rows import book_row, csv_rows, detail_of, distance_pct, money
from openalgo_gtt.api.errors import BadRequest

ORDER = {"symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": "1", "product": "CNC",
         "trigger_type": "SINGLE", "csrf_token": "t"}


def body(last_price, **fields):
    return forms.api_body(MultiDict({**ORDER, **fields}), lambda: last_price)


@pytest.mark.parametrize(("typed", "last", "field"), [
    ("9.60", Decimal("9.50"), "triggerprice_tg"),  # above the last price: fires on a rise
    ("9.50", Decimal("9.50"), "triggerprice_tg"),  # at it, too
    ("9.40", Decimal("9.50"), "triggerprice_sl"),  # below it: fires on a fall
])
def test_a_single_trigger_takes_its_direction_from_the_last_price(typed, last, field):
    made = body(last, trigger_price=typed)
    assert made[field] == typed and {"triggerprice_tg", "triggerprice_sl"} - {field} & made.keys() == set()
    assert "csrf_token" not in made and "trigger_price" not in made  # exactly the API's fields


def test_without_a_last_price_a_single_is_refused_beside_its_trigger():
    with pytest.raises(forms.FieldErrors) as refused:
        body(None, trigger_price="9.6")
    assert refused.value.status == 409 and "push a price" in refused.value.errors["trigger_price"]


def test_the_other_fields_are_checked_before_the_last_price_is_read():
    def never():
        raise AssertionError("the last price was read for a form that is refused anyway")
    with pytest.raises(BadRequest):
        forms.api_body(MultiDict({**ORDER, "quantity": "1.5", "trigger_price": "9.6"}), never)


def test_an_oco_and_a_bracket_carry_only_their_own_fields():
    oco = body(None, trigger_type="OCO", triggerprice_sl="9", triggerprice_tg="10", entry_value="5", trigger_price="1")
    assert oco["triggerprice_sl"] == "9" and oco["triggerprice_tg"] == "10"
    assert "entry_value" not in oco and "trigger_price" not in oco
    bracket = body(None, trigger_type="BRACKET", entry_mode="manual", entry_value="10.4", triggerprice_tg="11")
    assert bracket["entry_mode"] == "manual" and "triggerprice_tg" not in bracket


def test_a_modify_keeps_the_direction_the_gtt_has():
    made = forms.api_body(MultiDict({**ORDER, "trigger_price": "9.2", "direction": "triggerprice_tg"}))
    assert made["triggerprice_tg"] == "9.2"  # no last price needed, none asked for


def test_refusals_land_beside_their_fields():
    single = forms.field_errors(400, {"message": "x", "errors": [{"field": "triggerprice_tg", "message": "too big"}]},
                                "SINGLE", {"trigger_price", "quantity", "_form"})
    assert single == {"trigger_price": "too big"}
    unknown = forms.field_errors(404, {"message": "Unknown symbol 'IDEAA' on exchange 'NSE'; did you mean IDEA?"},
                                 "OCO", {"symbol", "_form"})
    assert unknown == {"symbol": "Unknown symbol 'IDEAA' on exchange 'NSE'; did you mean IDEA?"}
    general = forms.field_errors(429, {"message": "Daily trade limit reached"}, "OCO", {"symbol", "_form"})
    assert general == {"_form": "Daily trade limit reached"}


ENTRY = {"trigger_id": "GTT-1", "trigger_type": "single", "status": "active", "message": None, "symbol": "IDEA",
         "exchange": "NSE", "trigger_prices": [Decimal("9.60")], "last_price": Decimal("9.50"),
         "legs": [{"action": "BUY", "quantity": 2, "price": Decimal("9.60"), "product": "CNC", "role": "entry",
                   "trigger_type": "ABOVE", "status": "SCHEDULED", "order_id": None, "message": None}],
         "created_at": "2026-12-02 10:00:00", "updated_at": "2026-12-02 10:05:00", "expires_at": ""}


def test_a_row_shows_the_distance_to_its_trigger():
    row = book_row(ENTRY)
    assert (row["triggers"], row["last_price"], row["distance"]) == ("9.6", "9.5", "+1.05%")
    assert book_row({**ENTRY, "last_price": Decimal(0)})["distance"] == "unknown"
    assert distance_pct(Decimal("90"), Decimal("100")) == Decimal("-10.00")
    assert money(Decimal("10.00")) == "10" and money(None) == ""


def test_prices_show_in_the_ticks_decimals_and_never_lose_a_digit():
    assert money(Decimal("10.8"), Decimal("0.01")) == "10.80"
    assert money(Decimal("3625.5"), Decimal("0.10")) == "3625.5"
    assert money(Decimal("805"), Decimal("0.05")) == "805.00"
    assert money(Decimal("75.0025"), Decimal("0.01")) == "75.0025"  # more decimals than the tick: all kept
    assert money(Decimal("24500"), Decimal("1")) == "24500"
    assert book_row(ENTRY, Decimal("0.01"))["triggers"] == "9.60"


def leg(role, price, trigger_type="ABOVE"):
    return {"action": "BUY", "quantity": 1, "price": Decimal(price), "role": role, "trigger_type": trigger_type}


def test_several_triggers_are_named_by_their_legs_when_their_prices_tell_them_apart():
    bracket = {**ENTRY, "trigger_type": "bracket", "trigger_prices": [Decimal("796.95"), Decimal("805"), Decimal("813.05")],
               "legs": [leg("entry", "805"), leg("target", "813.05", "IMMEDIATE"), leg("stoploss", "796.95", "IMMEDIATE")]}
    assert book_row(bracket, Decimal("0.05"))["triggers"] == "entry 805.00 · target 813.05 · stop-loss 796.95"
    # Kite: a leg's order price is not its trigger, so the triggers cannot be named by leg.
    kite = {**ENTRY, "trigger_type": "two-leg", "trigger_prices": [Decimal("9"), Decimal("10.5")],
            "legs": [leg("stoploss", "8.95"), leg("target", "10.45")]}
    assert book_row(kite, Decimal("0.05"))["triggers"] == "9.00 / 10.50"
    assert [(x["role"], x["fires"]) for x in detail_of(bracket)["legs"]] == [
        ("entry", "fires when the price rises to it"), ("target", "armed once the entry fills"),
        ("stop-loss", "armed once the entry fills")]


def test_a_detail_prefills_the_modify_form():
    detail = detail_of(ENTRY)
    assert detail["api_type"] == "SINGLE"
    assert detail["prefill"] == {"quantity": 2, "trigger_price": "9.6", "direction": "triggerprice_tg"}


def test_the_csv_never_hands_a_spreadsheet_a_formula():
    (line,) = csv_rows([{**ENTRY, "message": "=HYPERLINK(\"http://evil\")"}])
    assert line[-1].startswith("'=") and line[:3] == ["GTT-1", "single", "active"]


@pytest.mark.parametrize("text", [" =1+1", "\n=cmd|' /C calc'!A0", "\r\n+1", "  @SUM(A1)", "\uff1d1+1", "\uff0b1",
                                  "\uff0d1", "\uff20x", "\u3000=1", "\ufe66HYPERLINK(\"x\")", "\u00a0-1"])
def test_the_csv_guards_formulas_behind_spaces_line_breaks_and_full_width_forms(text):
    """Issue 25, item 9: a leading space or newline, or the full-width ＝, slipped past the guard."""
    from openalgo_gtt.api.dashboard.rows import _cell

    assert _cell(text) == "'" + text
    assert _cell("IDEA") == "IDEA" and _cell("GTT-123") == "GTT-123"
