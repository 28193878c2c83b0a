"""Request bodies, validated with pydantic; unknown fields ignored (TradingView alerts carry
extras). The same models describe the bodies in the Swagger document.

What a field accepts, and nothing looser (pydantic's own lax coercions never see the input):

- a number: a JSON number, or a plain decimal string: optional sign, ASCII digits, optional
  fraction, surrounding spaces ignored ("9.55", " 10", "+3"). No booleans, hex, octal, binary,
  underscores, exponents in strings, commas, other scripts' digits, NaN or infinities; at most
  MAX_NUMBER_TEXT characters, and nothing of 10**16 or more (so no huge integer is ever built).
- a quantity: a number that is whole: 1, 1.0 and "1.0" (TradingView renders
  {{strategy.order.contracts}} so) are 1; 1.5 is refused. A quantity's string may also be in
  exponent notation when that is a whole number, as OpenAlgo reads it ("1e1" is 10, "1.5e1" is
  15; "1e-1" is refused as a fraction).
- a boolean: a JSON boolean, or "true" / "false" in any case. Not 1, "1", "yes", "on".
- an enumeration (action, product, ...): a string, in any case ("buy" is BUY).
- an optional field: "" counts as absent (alert templates leave fields empty).
"""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from openalgo_gtt.api.errors import BadRequest
from openalgo_gtt.domain.expiry import FORMAT_RULE, parse_expiry
from openalgo_gtt.domain.intent import PlaceIntent

MAX_PRICE = Decimal("10000000")  # Rs 1 crore: above any listed price; larger is a typo or overflow
MAX_QUANTITY = 100_000_000
MAX_NUMBER_TEXT = 40
_MAX_ADJUSTED_EXPONENT = 15  # below 10**16: far above any price or quantity limit
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_EXPONENT_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]{1,3}")
NUMBER_RULE = 'must be a JSON number or a plain decimal string such as "9.55"'
BOOLEAN_RULE = 'must be true or false (a JSON boolean, or the string "true" or "false")'


def _blank_is_none(value):
    # Alert templates leave optional fields as "" rather than leaving them out.
    return None if isinstance(value, str) and not value.strip() else value


def strict_decimal(value, *, exponent: bool = False) -> Decimal:
    """A number as the module docstring defines it, as a Decimal; anything else a field error.
    `exponent`: a string may also be in exponent notation ("1e1"; quantities only)."""
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", NUMBER_RULE + ", not a boolean")
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):  # only from Python callers: JSON fractions parse as Decimal
        number = Decimal(repr(value))  # "nan" and "inf" become Decimal's NaN and Infinity
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_TEXT or not (_DECIMAL_TEXT.fullmatch(text)
                                               or (exponent and _EXPONENT_TEXT.fullmatch(text))):
            refused = "hex, underscores or words" if exponent else "hex, underscores, exponents or words"
            raise PydanticCustomError("number_text", NUMBER_RULE + f" (no {refused})")
        number = Decimal(text)
    else:
        raise PydanticCustomError("number_type", NUMBER_RULE)
    if not number.is_finite():
        raise PydanticCustomError("number_finite", "must be a finite number (NaN and infinities are refused)")
    if number and number.adjusted() > _MAX_ADJUSTED_EXPONENT:
        raise PydanticCustomError("number_size", "is far too large")
    return number


def strict_whole(value) -> int:
    """A strict number that is whole (1, 1.0, "1.0", "1e1"), as an int."""
    number = strict_decimal(value, exponent=True)
    if number != number.to_integral_value():
        raise PydanticCustomError("whole_number", "must be a whole number")
    return int(number)


def expiry(value) -> datetime | None:
    """`expires_at`: an ISO date or date-time, IST without a zone (domain/expiry.py); "" is none."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("expiry_type", FORMAT_RULE)
    try:
        return parse_expiry(value)
    except ValueError:
        raise PydanticCustomError("expiry_text", FORMAT_RULE) from None


def no_expiry_change(value) -> None:
    if value is None or isinstance(value, str) and not value.strip():
        return None
    raise PydanticCustomError("expiry_on_modify", "is set on place and kept by a modify; to change it, cancel "
                                                  "and place again")


def strict_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise PydanticCustomError("bool_type", BOOLEAN_RULE)


def _blank_is(default):
    return lambda value: default if isinstance(value, str) and not value.strip() else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


Price = Annotated[Decimal, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False), BeforeValidator(strict_decimal)]
OptionalPrice = Annotated[Price | None, BeforeValidator(_blank_is_none)]
PositivePrice = Annotated[Decimal, Field(gt=0, le=MAX_PRICE, allow_inf_nan=False), BeforeValidator(strict_decimal)]
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY), BeforeValidator(strict_whole)]
Flag = Annotated[bool, BeforeValidator(strict_bool)]
Side = Annotated[Literal["BUY", "SELL"], BeforeValidator(_upper)]
Product = Annotated[Literal["CNC", "NRML", "MIS", "MTF"], BeforeValidator(_upper)]
PriceType = Annotated[Literal["LIMIT", "MARKET"], BeforeValidator(_upper)]
TriggerType = Annotated[Literal["SINGLE", "OCO", "BRACKET"], BeforeValidator(_upper)]
Mode = Annotated[Literal["auto", "manual", "percent"], BeforeValidator(_lower)]
Text = Annotated[str, Field(min_length=1, max_length=64), BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    apikey: str = Field(description="Your openalgo-gtt API key")
    idempotency_key: str | None = Field(
        None, max_length=128,
        description="Writes: the same key from the same API key within 24 hours gets the first answer "
                    "and never reaches the broker again (also accepted as an Idempotency-Key header)")


class GttBody(Body):
    """The fields a place and a modify share. A field only one of them reads belongs to that one
    alone: on the other it is an unknown field, ignored as any other is."""

    strategy: str | None = Field(None, max_length=64, description="Your strategy's name (recorded)")
    trigger_type: TriggerType = Field("SINGLE", description="SINGLE, OCO (two-leg), or BRACKET (entry + target + stop-loss)")
    exchange: Text = Field(description="NSE, BSE, NFO, BFO, CDS, BCD, MCX, ...")
    symbol: Text = Field(description="OpenAlgo symbol: IDEA, NIFTY29DEC26FUT, NIFTY29DEC2624500CE")
    action: Side
    product: Product = "CNC"
    quantity: Quantity
    pricetype: PriceType = "LIMIT"
    price: OptionalPrice = Field(None, description="Child order limit; Upstox fires a LIMIT at the trigger price")
    triggerprice_sl: OptionalPrice = Field(None, description="SINGLE: trigger below the market (BELOW)")
    triggerprice_tg: OptionalPrice = Field(None, description="SINGLE: trigger above the market (ABOVE)")
    stoploss: OptionalPrice = None
    target: OptionalPrice = None
    entry_mode: Mode = "auto"
    entry_value: OptionalPrice = None
    target_type: Mode = "auto"
    target_value: OptionalPrice = None
    sl_type: Mode = "auto"
    sl_value: OptionalPrice = None
    trailing_gap: OptionalPrice = Field(None, description="BRACKET: trailing stop-loss gap in rupees")
    market_protection: Annotated[Annotated[int, Field(ge=0, le=100), BeforeValidator(strict_whole)] | None,
                                 BeforeValidator(_blank_is_none)] = None
    force: Annotated[Flag, BeforeValidator(_blank_is(False))] = Field(
        False, description="Place even when the daily trade limit is reached (still counted)")

    def intent(self) -> PlaceIntent:
        zero = Decimal(0)
        return PlaceIntent(
            trigger_type=self.trigger_type, action=self.action, product=self.product,
            quantity=self.quantity, pricetype=self.pricetype, price=self.price or zero,
            triggerprice_sl=self.triggerprice_sl or zero, triggerprice_tg=self.triggerprice_tg or zero,
            stoploss=self.stoploss, target=self.target,
            entry_mode=self.entry_mode, entry_value=self.entry_value,
            target_type=self.target_type, target_value=self.target_value,
            sl_type=self.sl_type, sl_value=self.sl_value,
            trailing_gap=self.trailing_gap, market_protection=self.market_protection,
        )


class PlaceGttBody(GttBody):
    queue: Annotated[Flag, BeforeValidator(_blank_is(True))] = Field(
        True, description="In a burst, a place that cannot be sent within the caller's patience is queued "
                          "(202, placed in arrival order); false answers 429 instead, as the header "
                          "Prefer: respond-sync does")
    expires_at: Annotated[datetime | None, BeforeValidator(expiry)] = Field(
        None, description="When the gateway cancels the GTT if it has not fired: an ISO date (the end of that day) "
                          "or date-time, IST unless it names a zone; in the future, at most a year ahead",
        json_schema_extra={"type": "string", "example": "2026-12-31 15:00"})


class ModifyGttBody(GttBody):
    """A modify: a place's fields but `queue` (a modify is never queued: given, it is ignored as
    any unknown field is), with the trigger id, and the GTT's own type and expiry kept."""

    # Omitted (or ""), the GTT keeps its own type: a modify restates prices, not the kind of GTT.
    trigger_type: Annotated[TriggerType | None, BeforeValidator(_blank_is_none)] = Field(
        None, description="SINGLE, OCO or BRACKET; omitted, the GTT's own type (a modify cannot change it)")
    expires_at: Annotated[str | None, BeforeValidator(no_expiry_change)] = Field(
        None, description="Not accepted: a modify keeps the expiry set on place")
    trigger_id: Text


class TriggerBody(Body):
    strategy: str | None = Field(None, max_length=64)
    trigger_id: Text


class StatusBody(Body):
    """gttorderstatus: a trigger by its id, or a place by the request_id its answer gave (a
    queued place has no trigger id until it is sent)."""

    strategy: str | None = Field(None, max_length=64)
    trigger_id: Annotated[Text | None, BeforeValidator(_blank_is_none)] = None
    request_id: Annotated[Text | None, BeforeValidator(_blank_is_none)] = Field(
        None, description="The request_id of a place's answer (a queued place's 202 gives one)")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.trigger_id is None) == (self.request_id is None):
            raise ValueError("give trigger_id, or the request_id of a place's answer")
        return self


class OrderBookBody(Body):
    status: Annotated[Literal["active", "all"], BeforeValidator(_lower)] = Field(
        "active", description='"active" (default): triggers that can still fire; "all": every state'
    )


def _describe(error: dict, names: dict[str, str]) -> str:
    loc = [names.get(part, part) if i == 0 else part for i, part in enumerate(error["loc"])]
    where = ".".join(str(part) for part in loc) or "body"
    return f"{where}: {error['msg']}"


def validate(model: type[BaseModel], body: dict, names: dict[str, str] | None = None):
    """The validated model, or a 400 naming every bad field (by `names[field]` when the caller
    knows the field by another name, as the seed routes' `qty`)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [e for e in exc.errors(include_url=False, include_input=False) if e["loc"] != ("apikey",)]
        problems = [_describe(e, names or {}) for e in errors] or ["apikey: a string is required"]
        raise BadRequest("Invalid request: " + "; ".join(problems[:5]),
                         errors=[{"field": p.split(":", 1)[0], "message": p.split(": ", 1)[1]} for p in problems]) from None
