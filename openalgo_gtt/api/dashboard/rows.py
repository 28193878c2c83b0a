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


def money(value, tick: Decimal | None = None) -> str:
    """A price as people write it: with the instrument's tick known, in its decimals (10.80 on a
    0.01 tick, 3625.5 on a 0.10 one), else as short as it goes (9.55, 10, 1234.5); "" when unknown."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    if tick:
        places = max(_places(tick), _places(number))  # never hides a digit the price has
        return format(number.quantize(Decimal(1).scaleb(-places)), "f")
    return format(number.normalize(), "f")


def _places(number: Decimal) -> int:
    """The decimals a number needs: 2 for 0.05 or 10.80, 0 for 1 or 10."""
    return max(0, -number.normalize().as_tuple().exponent)


# How a leg is named on the page: a bracket's "stoploss" is a stop-loss to a trader.
LEG_LABEL = {"entry": "entry", "target": "target", "stoploss": "stop-loss"}


def leg_label(role: str | None) -> str:
    return LEG_LABEL.get(role or "", role or "")


def leg_fires(trigger_type: str | None) -> str:
    """When a leg fires, in words (the broker's ABOVE, BELOW and IMMEDIATE are jargon)."""
    return {"ABOVE": "fires when the price rises to it", "BELOW": "fires when the price falls to it",
            "IMMEDIATE": "armed once the entry fills"}.get(str(trigger_type or "").upper(), "")


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


def trigger_parts(entry: dict, tick: Decimal | None = None) -> list[str]:
    """The trigger prices, each named by its leg when there are several (an OCO's stop-loss and
    target, a bracket's entry, target and stop-loss). A leg's price is its trigger's where the
    broker fires a LIMIT at the trigger (Upstox, the sandbox); where a leg has its own limit price
    (Kite) the triggers cannot be told apart by leg, and are shown unnamed."""
    prices = list(entry.get("trigger_prices") or ())
    legs = [leg for leg in entry.get("legs") or () if leg.get("role") and leg.get("price") is not None]
    if len(prices) > 1 and sorted(Decimal(str(leg["price"])) for leg in legs) == sorted(Decimal(str(p)) for p in prices):
        return [f"{leg_label(leg['role'])} {money(leg['price'], tick)}" for leg in legs]
    return [money(tp, tick) for tp in prices]


def triggers_text(entry: dict, tick: Decimal | None = None) -> str:
    parts = trigger_parts(entry, tick)
    return " · ".join(parts) if any(" " in part for part in parts) else " / ".join(parts)


def book_row(entry: dict, tick: Decimal | None = None) -> dict:
    """An order book entry as a table row; prices in the instrument's tick decimals when `tick`
    is known."""
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
        "triggers": triggers_text(entry, tick), "trigger_parts": trigger_parts(entry, tick),
        "last_price": money(last, tick) or "unknown",
        "distance": " / ".join(f"{d:+.2f}%" for d in distances if d is not None) or "unknown",
        "status": entry.get("status", ""), "message": entry.get("message") or "",
        "created": entry.get("created_at", ""), "updated": entry.get("updated_at", ""),
        "active": entry.get("status") == "active",
    }


def detail_of(entry: dict, tick: Decimal | None = None) -> dict:
    """One trigger (the gttorderstatus answer) for its expanded row and its Modify form."""
    row = book_row(entry, tick)
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
        "legs": [{"role": leg_label(leg.get("role")), "action": leg.get("action", ""),
                  "fires": leg_fires(leg.get("trigger_type")) or leg.get("trigger_type", ""),
                  "price": money(leg.get("price"), tick), "status": leg.get("status") or "", "order_id": leg.get("order_id") or "",
                  "fill": _fill_text(leg.get("fill"), tick), "message": leg.get("message") or ""} for leg in legs],
        "prefill": prefill,
    }


def _fill_text(fill: dict | None, tick: Decimal | None) -> str:
    """A leg's fill for its row: "COMPLETE: 3 at 9.70", "OPEN: 0 filled"."""
    if not fill:
        return ""
    price = f" at {money(fill.get('average_price'), tick)}" if fill.get("average_price") is not None else ""
    filled = fill.get("filled_quantity") or 0
    text = f"{fill.get('status')}: {filled}{price}" if filled else f"{fill.get('status')}: 0 filled"
    return f"{text} ({fill['message']})" if fill.get("message") else text


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


def life_rows(audited, events, trigger_id: str, *, tick: Decimal | None = None, source: str = "") -> list[dict]:
    """A trigger's life, oldest first: the audited requests that named it (the tick that fired it
    says so, with its price) and its recorded events (fired, rejected, expired...), each event
    marked with what saw it happen (`source`: a sandbox tick, or the watcher's pass)."""
    own = {trigger_id, "GTT-" + trigger_id.removeprefix("OCO-")}
    lines = []
    for row, shown in zip(audited, audit_rows(audited)):
        answer = row.response_body if isinstance(row.response_body, dict) else {}
        fired = [f for f in answer.get("fired") or () if isinstance(f, dict) and f.get("gtt_id") in own]
        if fired and row.http_status < 400:
            shown["said"] = "fired it: " + ", ".join(
                f"{f.get('transaction_type', '')} at {money(f.get('price'), tick)}"
                + (f" (tick at {money(f.get('ltp'), tick)})" if f.get("ltp") is not None else "") for f in fired)
        lines.append({**shown, "kind": "request"})
    for event in events:
        lines.append({"kind": "event", "time": event.get("at", ""), "event": str(event.get("event", "")).replace("_", " "),
                      "source": source, "said": event.get("message", "")})
    return sorted(lines, key=lambda line: line["time"])  # both in IST, "YYYY-MM-DD HH:MM:SS"


def _said(row) -> str:
    """The answer in a few words: its error, or what a success named."""
    answer = row.response_body if isinstance(row.response_body, dict) else {}
    if row.http_status >= 400:
        return str(row.error or answer.get("message") or "")
    fired = answer.get("fired")
    if isinstance(fired, list):
        return f"fired {len(fired)}"
    return str(answer.get("message") or answer.get("status") or "")
