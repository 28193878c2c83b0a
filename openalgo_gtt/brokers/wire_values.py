"""The JSON value rules every broker's wire module shares (upstox_wire.py, kite_wire.py): decoding
an answer with exact prices, reading its typed fields, writing a price as a JSON number, and
batching instrument keys. A shape error raises ValueError, which the transport reports as an
unreadable answer."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any


def decode(raw: bytes) -> Any:
    """An answer's JSON, or None when it is not JSON; parse_float=Decimal keeps prices exact
    from the wire onwards."""
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def snippet(raw: bytes) -> str:
    """The start of an answer, for an error message."""
    return raw[:200].decode("utf-8", "replace").strip()


def text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value != int(value):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def price(value: Any) -> Decimal:
    """A JSON number as Decimal, through str so a float never leaks binary noise in."""
    if type(value) is Decimal:  # what decode makes of every JSON fraction: exact already
        exact = value
    elif isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"expected a number, got {value!r}")
    else:
        exact = Decimal(str(value))
    if not exact.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return exact


def price_or_none(value: Any) -> Decimal | None:
    """Optional numbers: None when absent, null or not a number."""
    try:
        return None if value is None else price(value)
    except ValueError:
        return None


def json_number(value: Decimal) -> float:
    """A Decimal as a JSON number. float(str(d)) is the nearest double to the decimal, whose
    repr (what json.dumps writes) is the shortest string that reads back to it: 9.55 -> 9.55."""
    number = float(str(value))
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite price: {value!r}")
    return number


def batches(keys: Iterable[str], size: int) -> Iterator[list[str]]:
    """The distinct keys, in order, `size` at a time."""
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]
