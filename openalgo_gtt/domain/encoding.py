"""JSON as the gateway writes it, to callers and to its JSON columns: Decimal prices exactly (as
numbers), times as ISO 8601."""
from __future__ import annotations

import json
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
