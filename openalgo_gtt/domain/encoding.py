"""JSON as the gateway writes it, to callers and to its JSON columns: Decimal prices exactly (as
numbers), times as ISO 8601."""
from __future__ import annotations

import json
import re
import math
from datetime import date, datetime
from decimal import Decimal


def _json_default(value):
    # Request bodies are parsed with Decimal for exact prices; the audit stores them as numbers.
    if isinstance(value, Decimal):
        # A number JSON can carry is written as one; one beyond a double's range (1e999999999,
        # which a caller may send) as text: "Infinity" is not JSON, and PostgreSQL refuses it.
        if value.is_finite() and math.isfinite(as_float := float(value)):
            return as_float
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def dumps(value) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` as any database can store it: a NUL (PostgreSQL's text cannot hold one) and a lone
    surrogate (UTF-8 cannot encode one) are written as their JSON escape, `\\u0000`, `\\ud800`."""
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def storable_value(value):
    """A JSON-like value with every string in it, keys included, made `storable`."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(k) if isinstance(k, str) else k: storable_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable_value(v) for v in value]
    return value
