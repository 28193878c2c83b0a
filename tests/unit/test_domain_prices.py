"""Tick rounding: worked examples and properties."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openalgo_gtt.domain.prices import on_tick, price_exponent, round_to_tick, to_decimal

D = Decimal


@pytest.mark.parametrize(
    ("price", "tick", "expected"),
    [
        ("9.5533", "0.05", "9.55"),
        ("9.575", "0.05", "9.60"),  # half-up
        ("9.525", "0.05", "9.55"),  # exactly half a tick rounds up
        ("9.524", "0.05", "9.50"),
        ("10.504", "0.01", "10.50"),
        ("10.296", "0.01", "10.30"),
        ("10.40", "0.01", "10.40"),
        ("100", "1", "100.00"),  # at least 2 decimals
        ("2456.75", "0.10", "2456.80"),
        ("82.12345", "0.0025", "82.1225"),  # currency ticks keep 4 decimals
        ("9.55", "0.050", "9.55"),  # trailing zeros of the tick do not add decimals
    ],
)
def test_round_to_tick_examples(price, tick, expected):
    result = round_to_tick(D(price), D(tick))
    assert result == D(expected)
    assert str(result) == expected


def test_round_to_tick_accepts_strings_ints_and_floats_without_binary_noise():
    assert round_to_tick("9.575", "0.05") == D("9.60")
    assert round_to_tick(10, D("0.05")) == D("10.00")
    # 9.575 as a binary float is 9.57499999...; through its repr it is the 9.575 the caller meant.
    assert round_to_tick(9.575, 0.05) == D("9.60")


@pytest.mark.parametrize("tick", [D(0), D("-0.05")])
def test_round_to_tick_refuses_non_positive_tick(tick):
    with pytest.raises(ValueError):
        round_to_tick(D("10"), tick)


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), True, float("inf"), "abc", None])
def test_to_decimal_refuses_non_numbers(bad):
    with pytest.raises(ValueError):
        to_decimal(bad)


def test_on_tick():
    assert on_tick(D("9.55"), D("0.05"))
    assert on_tick(D("9.550"), D("0.05"))
    assert not on_tick(D("9.56"), D("0.05"))
    assert on_tick(D("100"), D("1"))
    assert not on_tick(D("100.5"), D("1"))


def test_price_exponent():
    assert price_exponent(D("0.05")) == -2
    assert price_exponent(D("1")) == -2
    assert price_exponent(D("0.0025")) == -4


TICKS = st.sampled_from([D("0.01"), D("0.05"), D("0.10"), D("0.25"), D("1"), D("5"), D("0.0025")])
PRICES = st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=4, allow_nan=False, allow_infinity=False)


@given(price=PRICES, tick=TICKS)
def test_rounding_lands_on_the_tick_and_is_idempotent(price, tick):
    rounded = round_to_tick(price, tick)
    assert on_tick(rounded, tick)
    assert round_to_tick(rounded, tick) == rounded
    assert str(round_to_tick(rounded, tick)) == str(rounded)
    # Nearest tick: never more than half a tick away.
    assert abs(rounded - price) <= tick / 2
    assert -rounded.as_tuple().exponent >= 2


@given(price=PRICES, tick=TICKS)
def test_on_tick_prices_are_unchanged(price, tick):
    on = round_to_tick(price, tick)
    assert on_tick(on, tick) and round_to_tick(on, tick) == on
