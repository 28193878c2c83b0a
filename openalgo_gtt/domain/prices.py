"""Tick arithmetic on `Decimal` rupees.

Exchanges refuse prices that are not a whole number of ticks, so every price the gateway sends
goes through `round_to_tick`. Floats never enter: a float is converted through its shortest
repr (`str`), which is what the caller typed, not its binary expansion.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

Number = Decimal | int | str | float


def to_decimal(value: Number) -> Decimal:
    """A finite Decimal from a Decimal, int, numeric string or float (via its repr)."""
    if isinstance(value, bool):  # bool is an int subclass; True is not a price
        raise ValueError("a boolean is not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        try:
            result = Decimal(value)
        except (ArithmeticError, TypeError):  # decimal.InvalidOperation is not a ValueError
            raise ValueError(f"not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def _check_tick(tick: Decimal) -> Decimal:
    tick = to_decimal(tick)
    if tick <= 0:
        raise ValueError(f"tick size must be positive, got {tick}")
    return tick


def price_exponent(tick: Number) -> int:
    """Decimal places a price with this tick is shown with: the tick's own, and at least 2
    (rupees and paise), so 100 with tick 1 is 100.00 and tick 0.0025 keeps 4 places."""
    exponent = _check_tick(to_decimal(tick)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite by _check_tick
    return min(exponent, -2)


def round_to_tick(price: Number, tick: Number) -> Decimal:
    """`price` rounded to the nearest multiple of `tick`, ties away from zero (half-up):
    9.5533 / 0.05 -> 9.55, 9.575 / 0.05 -> 9.60."""
    price = to_decimal(price)
    tick = _check_tick(to_decimal(tick))
    ticks = (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return (ticks * tick).quantize(Decimal(1).scaleb(price_exponent(tick)))


def on_tick(price: Number, tick: Number) -> bool:
    """True when `price` is a whole number of ticks."""
    return to_decimal(price) % _check_tick(to_decimal(tick)) == 0
