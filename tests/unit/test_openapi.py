"""Pydantic body schemas converted to Swagger 2.0 (api/openapi.py)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from jsonschema import Draft4Validator

from openalgo_gtt.api.openapi import (
    swagger2_document,
    swagger2_problems,
    swagger2_schema,
)
from openalgo_gtt.api.sandbox import TicksBody
from openalgo_gtt.api.schemas import (
    ModifyGttBody,
    OrderBookBody,
    PlaceGttBody,
    TriggerBody,
)

MODELS = [PlaceGttBody, ModifyGttBody, TriggerBody, OrderBookBody, TicksBody]


def as_document(**definitions) -> dict:
    return {"swagger": "2.0", "paths": {}, "definitions": definitions}


@pytest.mark.parametrize("model", [PlaceGttBody, ModifyGttBody, TriggerBody, TicksBody], ids=lambda m: m.__name__)
def test_the_raw_pydantic_schemas_are_not_swagger_2(model):
    # Why the conversion exists; if pydantic ever emits draft 4, this documents the change.
    assert swagger2_problems(as_document(M=model.model_json_schema()))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_converted_schemas_are_swagger_2_and_idempotent(model):
    schema = swagger2_schema(model)
    assert swagger2_problems(as_document(M=schema)) == []
    Draft4Validator.check_schema(schema)
    assert swagger2_schema(schema) == schema


def test_the_constructs_that_broke_schemathesis_are_rewritten():
    place = swagger2_schema(PlaceGttBody)["properties"]
    # Field(gt=0): numeric exclusiveMinimum -> minimum + boolean
    assert place["quantity"] == {
        "type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 100_000_000, "title": "Quantity",
    }
    # Decimal | None with numeric strings: the number, nullable, the string noted
    price = place["price"]
    assert price["type"] == "number" and price["x-nullable"] is True and "anyOf" not in price and "default" not in price
    assert (price["minimum"], price["maximum"]) == (0, 10_000_000)
    assert "numeric" in price["description"] or "string" in price["description"]
    # a bare pydantic `ge`/`le` on an Optional becomes minimum/maximum
    assert (place["market_protection"]["minimum"], place["market_protection"]["maximum"]) == (0, 100)
    assert "ge" not in place["market_protection"]
    # nested models: $defs/$ref inlined
    ticks = swagger2_schema(TicksBody)
    assert "$defs" not in ticks
    item = ticks["properties"]["ticks"]["items"]
    assert item["required"] == ["symbol", "exchange", "ltp"]
    assert item["properties"]["ltp"]["exclusiveMinimum"] is True


def test_what_the_converted_schema_accepts_the_model_accepts():
    # (null, allowed by x-nullable, is a Swagger extension draft 4 itself does not know)
    body = {"apikey": "k", "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1,
            "price": 9.55, "market_protection": 5, "strategy": "s"}
    Draft4Validator(swagger2_schema(PlaceGttBody)).validate(body)
    assert PlaceGttBody.model_validate(body).price == Decimal("9.55")
    ticks = {"apikey": "k", "ticks": [{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.5, "open": 9.4}]}
    Draft4Validator(swagger2_schema(TicksBody)).validate(ticks)
    TicksBody.model_validate(ticks)


def test_a_whole_document_is_converted_and_checked():
    document = as_document(PlaceGtt=PlaceGttBody.model_json_schema(), Ok={"type": "object"})
    document["paths"] = {"/x": {"post": {"parameters": [{"in": "body", "name": "b", "schema": {"$ref": "#/$defs/Nope"}}]}}}
    problems = swagger2_problems(document)
    assert any("exclusiveMinimum" in p for p in problems)
    assert any("paths./x.post.parameters[0].schema.$ref" in p for p in problems)
    converted = swagger2_document(document)
    assert [p for p in swagger2_problems(converted) if not p.startswith("paths.")] == []
    assert converted["definitions"]["Ok"] == {"type": "object"}
    assert document["definitions"]["PlaceGtt"] == PlaceGttBody.model_json_schema()  # not modified in place


def test_queue_is_a_place_field_only():
    # A modify is never queued: its schema does not offer `queue` (sent, it is ignored as any
    # unknown field is; tests/integration/test_openalgo_parity.py).
    assert "queue" in swagger2_schema(PlaceGttBody)["properties"]
    assert "queue" not in swagger2_schema(ModifyGttBody)["properties"]
    assert "queue" not in ModifyGttBody.model_fields
