"""Request bodies, validated with pydantic: numbers or numeric strings, `action` in any case,
NaN, infinities and absurd sizes refused, unknown fields ignored (TradingView alerts carry
extras). The same models describe the bodies in the Swagger document."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from openalgo_gtt.api.errors import BadRequest
from openalgo_gtt.domain.gtt import PlaceIntent

MAX_PRICE = Decimal("10000000")  # Rs 1 crore: above any listed price; larger is a typo or overflow
MAX_QUANTITY = 100_000_000


def _blank_is_none(value):
    # Alert templates leave optional fields as "" rather than leaving them out.
    return None if isinstance(value, str) and not value.strip() else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


Price = Annotated[Decimal, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)]
OptionalPrice = Annotated[Price | None, BeforeValidator(_blank_is_none)]
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY)]
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


class PlaceGttBody(Body):
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
    market_protection: Annotated[Annotated[int, Field(ge=0, le=100)] | None, BeforeValidator(_blank_is_none)] = None
    force: bool = Field(False, description="Place even when the daily trade limit is reached (still counted)")

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


class ModifyGttBody(PlaceGttBody):
    trigger_id: Text


class TriggerBody(Body):
    strategy: str | None = Field(None, max_length=64)
    trigger_id: Text


class OrderBookBody(Body):
    status: Annotated[Literal["active", "all"], BeforeValidator(_lower)] = Field(
        "active", description='"active" (default): triggers that can still fire; "all": every state'
    )


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


def validate(model: type[BaseModel], body: dict):
    """The validated model, or a 400 naming every bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [e for e in exc.errors(include_url=False, include_input=False) if e["loc"] != ("apikey",)]
        problems = [_describe(e) for e in errors] or ["apikey: a string is required"]
        raise BadRequest("Invalid request: " + "; ".join(problems[:5]),
                         errors=[{"field": p.split(":", 1)[0], "message": p.split(": ", 1)[1]} for p in problems]) from None
