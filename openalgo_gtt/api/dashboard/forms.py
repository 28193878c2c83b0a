"""The page's forms as the API's bodies: a "New GTT" or "Modify" form becomes exactly the JSON body
an OpenAlgo caller would send to /api/v1/placegtt or /modifygtt, validated by the same models
(api/schemas.py), and every refusal is put beside the form field it concerns.

The one field the API does not have is SINGLE's "Trigger price": its direction follows from the
last price shown beside it (at or above it: `triggerprice_tg`, fires on a rise; below it:
`triggerprice_sl`, fires on a fall), as a trader reads a chart.
"""
from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_core import PydanticCustomError

from typing import Callable

from openalgo_gtt.api.schemas import ModifyGttBody, PlaceGttBody, strict_decimal, validate

COMMON = ("symbol", "exchange", "action", "quantity", "product", "trigger_type")
BY_TYPE = {
    "SINGLE": (),  # trigger_price, translated below
    "OCO": ("triggerprice_sl", "stoploss", "triggerprice_tg", "target"),
    "BRACKET": ("entry_mode", "entry_value", "target_type", "target_value", "sl_type", "sl_value", "trailing_gap"),
}
SINGLE_TRIGGER = "trigger_price"
GENERAL = "_form"  # an error that concerns no one field
_API_TO_FORM_SINGLE = {"triggerprice_tg": SINGLE_TRIGGER, "triggerprice_sl": SINGLE_TRIGGER}


class PagePlaceBody(PlaceGttBody):
    """A place from the page: the session, not a key in the body, says who is calling."""

    apikey: str = Field("", exclude=True)


class PageModifyBody(ModifyGttBody):
    apikey: str = Field("", exclude=True)


class FieldErrors(Exception):
    """Refusals, by form field (GENERAL for the form as a whole)."""

    def __init__(self, errors: dict[str, str], status: int = 400):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.status = status


def trigger_type_of(form) -> str:
    value = str(form.get("trigger_type") or "SINGLE").strip().upper()
    return value if value in BY_TYPE else "SINGLE"


LastPrice = Callable[[], Decimal | None]


def single_trigger(form, body: dict, last_price: LastPrice) -> tuple[str, str] | None:
    """(the API field, the price as typed) for SINGLE's "Trigger price", or None when empty. The
    other fields of `body` are checked first (their refusals say more than a missing price), and
    only then is the last price asked for (an unknown symbol is refused there, beside Symbol)."""
    raw = str(form.get(SINGLE_TRIGGER) or "").strip()
    if not raw:
        return None
    try:
        price = strict_decimal(raw)
    except PydanticCustomError as exc:
        raise FieldErrors({SINGLE_TRIGGER: str(exc)}) from None
    validate(PagePlaceBody, {**body, "triggerprice_tg": raw})
    last_price = last_price()
    if last_price is None or last_price <= 0:
        raise FieldErrors({SINGLE_TRIGGER: "no last price is known for this symbol, so the direction cannot be "
                                           "told (on the sandbox, push a price first)"}, status=409)
    return ("triggerprice_tg" if price >= last_price else "triggerprice_sl"), raw


def _unknown() -> None:
    return None


def api_body(form, last_price: LastPrice = _unknown, *, fixed: dict | None = None) -> dict:
    """The OpenAlgo JSON body for a New GTT (or, with the trigger's `fixed` fields, a Modify) form.
    Empty fields are left out, as the API reads "" as absent anyway."""
    body = {name: str(form.get(name) or "").strip() for name in COMMON}
    body.update(fixed or {})
    kind = str(body.get("trigger_type") or "SINGLE").upper()
    for name in BY_TYPE.get(kind, ()):
        body[name] = str(form.get(name) or "").strip()
    if kind == "SINGLE":
        direction = str(form.get("direction") or "").strip()
        if direction in _API_TO_FORM_SINGLE:  # a modify keeps the direction the GTT has
            body[direction] = str(form.get(SINGLE_TRIGGER) or "").strip()
        else:
            chosen = single_trigger(form, body, last_price)
            if chosen is not None:
                body[chosen[0]] = chosen[1]
    idempotency_key = str(form.get("idempotency_key") or "").strip()
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    return {k: v for k, v in body.items() if v != ""}


def form_field(api_field: str, kind: str) -> str:
    """The form field an API field's refusal belongs beside."""
    if kind == "SINGLE":
        return _API_TO_FORM_SINGLE.get(api_field, api_field)
    return api_field


def field_errors(status: int, envelope: dict, kind: str, known: set[str]) -> dict[str, str]:
    """An error envelope (services/answers.py) as form-field errors."""
    found: dict[str, str] = {}
    for item in envelope.get("errors") or ():
        field = form_field(str(item.get("field", "")).split(".")[0], kind)
        if field in known:
            found.setdefault(field, item.get("message", ""))
    if found:
        return found
    message = envelope.get("message", "")
    if status == 404 and "symbol" in known and message.startswith("Unknown symbol"):
        return {"symbol": message}  # with the close matches, when there are any
    details_field = next((form_field(k, kind) for k in envelope if form_field(k, kind) in known
                          and k not in ("status", "message")), None)
    if kind == "SINGLE" and "needs exactly one trigger" in message:
        details_field = SINGLE_TRIGGER
    return {details_field or GENERAL: message}
