"""Pydantic JSON Schema -> Swagger 2.0 schema objects, for flask-restx's `ns.schema_model`.

flask-restx serves Swagger 2.0, whose schema objects are a JSON Schema draft-4 subset. Pydantic 2
writes JSON Schema 2020-12, and these of its constructs break Swagger 2.0 tools (schemathesis
refuses the operation or generates no body, Swagger UI shows an empty field):

- `exclusiveMinimum: 0` as a number (`Field(gt=0)`): draft 4 wants `minimum: 0` plus
  `exclusiveMinimum: true`;
- `anyOf` and `{"type": "null"}` (`Decimal | None`, numbers-or-numeric-strings): Swagger 2.0 has
  neither; a nullable field is `x-nullable: true`;
- `$defs` with `$ref: "#/$defs/Name"` (nested models): the reference is to the root of the
  served document, where no `$defs` exists, so it cannot be resolved;
- a bare `ge`/`le` (not JSON Schema at all) where `Field(ge=..)` constrains an Optional;
- `const`, `examples` and list-valued `type`.

`swagger2_schema(Model)` rewrites a model's schema into the subset (nested models inlined, the
first non-null `anyOf` branch kept: the number for prices, whose description then says a numeric
string is accepted too); `swagger2_problems(document)` lists what is still wrong in a served
document; `swagger2_document(document)` converts every schema of a whole document.
"""
from __future__ import annotations

import copy
from typing import Any

from flask_restx import fields
from pydantic import BaseModel

_PYDANTIC_BOUNDS = {"ge": ("minimum", False), "gt": ("minimum", True), "le": ("maximum", False), "lt": ("maximum", True)}
_UNSUPPORTED = ("$defs", "definitions", "const", "examples", "prefixItems", "not", "if", "then", "else",
                "dependentRequired", "dependentSchemas", "unevaluatedProperties", "contentMediaType")


def swagger2_schema(model: type[BaseModel] | dict) -> dict:
    """The Swagger-2.0-friendly schema of a pydantic model (or of a JSON Schema dict)."""
    schema = model.model_json_schema() if isinstance(model, type) else copy.deepcopy(model)
    defs = {**schema.pop("definitions", {}), **schema.pop("$defs", {})}
    return _convert(schema, defs, ())


def _resolve(ref: str, defs: dict, seen: tuple[str, ...]) -> dict:
    name = ref.rsplit("/", 1)[-1]
    if ref.startswith(("#/$defs/", "#/definitions/")) and name in defs and name not in seen:
        return _convert(copy.deepcopy(defs[name]), defs, (*seen, name))
    if name in seen:  # a recursive model: Swagger 2.0 tools cannot inline it; leave it open
        return {"type": "object", "description": f"a nested {name}"}
    return {"$ref": ref}  # already a document reference (#/definitions/...): keep


def _convert(node: Any, defs: dict, seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        resolved = _resolve(node["$ref"], defs, seen)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**resolved, **_convert(siblings, defs, seen)} if siblings else resolved
    out: dict = {}
    nullable = False
    for key, value in node.items():
        if key in ("anyOf", "oneOf"):
            branches = [b for b in value if not (isinstance(b, dict) and b.get("type") == "null")]
            nullable = nullable or len(branches) < len(value)
            converted = [_convert(b, defs, seen) for b in branches]
            if converted:
                chosen = converted[0]
                others = sorted({b.get("type") for b in converted[1:] if b.get("type") and b.get("type") != chosen.get("type")})
                out = {**chosen, **out}
                if others:
                    out["x-also-accepts"] = others
            continue
        if key == "allOf" and len(value) == 1:  # pydantic wraps a described $ref this way
            out = {**_convert(value[0], defs, seen), **out}
            continue
        if key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            nullable = nullable or len(kinds) < len(value)
            if kinds:
                out["type"] = kinds[0]
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        if key in _PYDANTIC_BOUNDS and isinstance(value, (int, float)) and not isinstance(value, bool):
            # pydantic writes Field(ge=...) on an Optional as a bare `ge`: JSON Schema ignores it
            bound, exclusive = _PYDANTIC_BOUNDS[key]
            out[bound] = value
            if exclusive:
                out["exclusiveMinimum" if bound == "minimum" else "exclusiveMaximum"] = True
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "examples" and isinstance(value, list):
            if value:
                out.setdefault("example", value[0])
            continue
        if key in _UNSUPPORTED:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _convert(sub, defs, seen) for name, sub in value.items()}
            continue
        out[key] = value if key in ("example", "default", "enum") else _convert(value, defs, seen)
    if nullable:
        out["x-nullable"] = True
    if "default" in out and out["default"] is None:
        del out["default"]  # Swagger 2.0: a default must be of the type
    accepts = out.pop("x-also-accepts", None)
    if accepts:
        note = "Also accepted as a " + " or ".join(accepts) + (" (e.g. \"9.55\")" if "string" in accepts else "") + "."
        described = out.get("description", "").rstrip().rstrip(".")
        out["description"] = f"{described}. {note}" if described else note
    return out


# -- checking and converting a whole served document --------------------------------------------


def swagger2_problems(document: dict) -> list[str]:
    """Every construct in a Swagger 2.0 document's schemas that Swagger 2.0 does not allow."""
    problems: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            here = f"{where}.{key}"
            if key in ("anyOf", "oneOf"):
                problems.append(f"{here}: {key} is not Swagger 2.0")
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
                problems.append(f"{here}: must be a boolean next to minimum/maximum in Swagger 2.0")
            elif key == "type" and (value == "null" or isinstance(value, list)):
                problems.append(f"{here}: {value!r} is not a Swagger 2.0 type")
            elif key == "$ref" and isinstance(value, str) and not value.startswith("#/definitions/"):
                problems.append(f"{here}: {value} does not resolve in the document")
            elif key in _PYDANTIC_BOUNDS and not isinstance(value, dict):
                problems.append(f"{here}: pydantic's {key} is not JSON Schema (minimum/maximum)")
            elif key in _UNSUPPORTED and key != "definitions":
                problems.append(f"{here}: {key} is not Swagger 2.0")
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    walk(sub, f"{here}.{name}")
            elif key not in ("example", "default", "enum"):
                walk(value, here)

    for name, schema in (document.get("definitions") or {}).items():
        walk(schema, f"definitions.{name}")
    for path, operations in (document.get("paths") or {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for i, parameter in enumerate(operation.get("parameters") or []):
                if isinstance(parameter, dict) and "schema" in parameter:
                    walk(parameter["schema"], f"paths.{path}.{method}.parameters[{i}].schema")
    return problems


def swagger2_document(document: dict) -> dict:
    """A copy of `document` with every definition converted by swagger2_schema (idempotent)."""
    converted = copy.deepcopy(document)
    converted["definitions"] = {
        name: swagger2_schema(schema) for name, schema in (document.get("definitions") or {}).items()
    }
    return converted


# -- response models: flask-restx fields that may be null --------------------------------------
# flask-restx documents `fields.String` as {"type": "string"} whatever `nullable=` says, so a
# null in a response (a leg's order_id before it fires, its message) breaks the documented
# schema. These say so with Swagger 2.0's `x-nullable`.


class _Nullable:
    @property
    def __schema__(self):
        return {**super().__schema__, "x-nullable": True}  # type: ignore[misc]


class NullableString(_Nullable, fields.String):
    pass


class NullableFloat(_Nullable, fields.Float):
    pass
