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
        # A Decimal beyond a float's range (1e999999999) would become Infinity, which is not JSON
        # (PostgreSQL refuses it in a JSON column, losing the audit row): it is kept as text.
        as_float = float(value) if value.is_finite() else math.inf
        return as_float if math.isfinite(as_float) else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def dumps(value) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))
