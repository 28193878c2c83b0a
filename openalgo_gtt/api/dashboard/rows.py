"""What the page's tables show, from the API's own answers: an order book entry (the same dict
/api/v1/gttorderbook answers) as a table row, a detail, a CSV line; an audit row as a line."""
from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import Decimal

from openalgo_gtt.domain.clock import IST, ist_text

API_TYPE = {"single": "SINGLE", "two-leg": "OCO", "bracket": "BRACKET"}
CSV_HEADER = ("trigger_id", "type", "status", "symbol", "exchange", "action", "quantity", "trigger_prices",
              "last_price", "distance_pct", "created_at_ist", "updated_at_ist", "expires_at_ist", "message")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def money(value) -> str:
    """A price as people write it: 9.55, 10, 1234.5; "" when unknown."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    text = format(number.normalize(), "f")
    return text


def distance_pct(trigger, last_price) -> Decimal | None:
    """How far the price must move to reach the trigger, in % of the last price (None unknown)."""
    if not last_price:
        return None
    last = Decimal(str(last_price))
    return ((Decimal(str(trigger)) - last) / last * 100).quantize(Decimal("0.01"))


def ist_moment(text: str | None) -> datetime | None:
    """An order book time ("YYYY-MM-DD HH:MM:SS", IST) as a moment; None when absent or unreadable."""
    try:
        return datetime.strptime(text or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    except ValueError:
        return None


def dom_id(trigger_id: str) -> str:
    """An HTML id for a trigger, whatever characters its id holds."""
    return "t" + trigger_id.encode().hex()


def book_row(entry: dict) -> dict:
    legs = entry.get("legs") or []
    first = legs[0] if legs else {}
    last = entry.get("last_price") or None
    distances = [distance_pct(tp, last) for tp in entry.get("trigger_prices") or ()]
    return {
        "trigger_id": entry["trigger_id"], "dom_id": dom_id(entry["trigger_id"]),
        "symbol": entry.get("symbol", ""), "exchange": entry.get("exchange", ""),
        "strategy": entry.get("strategy") or "",  # which alert placed it
        "type": entry.get("trigger_type", ""), "action": first.get("action", ""),
        "quantity": first.get("quantity", ""),
        "triggers": " / ".join(money(tp) for tp in entry.get("trigger_prices") or ()),
        "last_price": money(last) or "unknown",
        "distance": " / ".join(f"{d:+.2f}%" for d in distances if d is not None) or "unknown",
        "status": entry.get("status", ""), "message": entry.get("message") or "",
        "created": entry.get("created_at", ""), "updated": entry.get("updated_at", ""),
        "active": entry.get("status") == "active",
    }


def detail_of(entry: dict) -> dict:
    """One trigger (the gttorderstatus answer) for its expanded row and its Modify form."""
    row = book_row(entry)
    legs = entry.get("legs") or []
    first = legs[0] if legs else {}
    by_role = {leg.get("role"): leg for leg in legs}
    api_type = API_TYPE.get(entry.get("trigger_type", ""), "SINGLE")
    prefill = {"quantity": first.get("quantity", "")}
    if api_type == "SINGLE":
        prefill["trigger_price"] = money(first.get("price"))
        prefill["direction"] = "triggerprice_tg" if first.get("trigger_type") == "ABOVE" else "triggerprice_sl"
    elif api_type == "OCO":
        prefill.update(triggerprice_sl=money(by_role.get("stoploss", {}).get("price")),
                       triggerprice_tg=money(by_role.get("target", {}).get("price")))
    else:
        prefill.update(entry_mode="manual", entry_value=money(by_role.get("entry", {}).get("price")),
                       target_type="manual", target_value=money(by_role.get("target", {}).get("price")),
                       sl_type="manual", sl_value=money(by_role.get("stoploss", {}).get("price")))
    return {
        **row, "api_type": api_type, "product": first.get("product", ""), "expires": entry.get("expires_at", ""),
        "legs": [{"role": leg.get("role", ""), "action": leg.get("action", ""), "trigger_type": leg.get("trigger_type", ""),
                  "price": money(leg.get("price")), "status": leg.get("status") or "", "order_id": leg.get("order_id") or "",
                  "message": leg.get("message") or ""} for leg in legs],
        "prefill": prefill,
    }


PREFILL_FIELDS = ("quantity", "trigger_price", "direction", "triggerprice_sl", "stoploss", "triggerprice_tg", "target",
                  "entry_value", "target_value", "sl_value", "trailing_gap")


def detail_from_form(form) -> dict:
    """A submitted Modify form as the detail its form is drawn from (to draw it again with the
    refusal beside its field)."""
    trigger_id = str(form.get("trigger_id") or "").strip()
    api_type = str(form.get("trigger_type") or "").strip().upper()
    kinds = {v: k for k, v in API_TYPE.items()}
    api_type = api_type if api_type in kinds else "SINGLE"
    fixed = {name: str(form.get(name) or "").strip() for name in ("symbol", "exchange", "action", "product")}
    return {"trigger_id": trigger_id, "dom_id": dom_id(trigger_id), "api_type": api_type, "type": kinds[api_type],
            **fixed, "prefill": {name: str(form.get(name) or "") for name in PREFILL_FIELDS}}


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula: one that starts with = + - @ (tab, CR),
    also after leading spaces or line breaks, and also in their full-width or other compatibility
    forms (＝, ＋, －, ＠, ﹦ ...: NFKC folds them), gets a leading apostrophe."""
    text = "" if value is None else str(value)
    probe = unicodedata.normalize("NFKC", text).lstrip(" \t\r\n\x0b\x0c\u00a0\u3000")
    return "'" + text if text.startswith(_FORMULA_START) or probe.startswith(_FORMULA_START[:4]) else text


def csv_rows(entries) -> list[list[str]]:
    lines = []
    for entry in entries:
        row = book_row(entry)
        distances = [distance_pct(tp, entry.get("last_price") or None) for tp in entry.get("trigger_prices") or ()]
        lines.append([_cell(row["trigger_id"]), row["type"], row["status"], _cell(row["symbol"]), row["exchange"],
                      row["action"], row["quantity"], " ".join(money(tp) for tp in entry.get("trigger_prices") or ()),
                      money(entry.get("last_price") or None),
                      " ".join(str(d) for d in distances if d is not None),
                      row["created"], row["updated"], entry.get("expires_at", ""), _cell(row["message"])])
    return lines


def _broker_call_text(call) -> str:
    if isinstance(call, dict):
        status = call.get("status") if call.get("status") is not None else (call.get("error") or "no answer")
        return f"{call.get('method', '')} {call.get('path', '')} {status}"
    return str(call)


def audit_rows(rows) -> list[dict]:
    return [{
        "id": row.id, "time": ist_text(row.created_at), "method": row.method, "endpoint": row.endpoint,
        "key": row.api_key_name or "", "status": row.http_status, "latency": f"{row.latency_ms:.1f} ms",
        "broker_calls": [_broker_call_text(call) for call in row.broker_calls or ()],
        "said": _said(row),
    } for row in rows]


def _said(row) -> str:
    """The answer in a few words: its error, or what a success named."""
    answer = row.response_body if isinstance(row.response_body, dict) else {}
    if row.http_status >= 400:
        return str(row.error or answer.get("message") or "")
    fired = answer.get("fired")
    if isinstance(fired, list):
        return f"fired {len(fired)}"
    return str(answer.get("message") or answer.get("status") or "")
