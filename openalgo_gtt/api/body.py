"""Reading a request body as a JSON object, whatever its Content-Type.

TradingView posts JSON as text/plain, so the Content-Type is not trusted. Numbers with a
fraction parse as Decimal (exact to the paisa); NaN, infinities and numbers beyond a float's
range are refused. A body nested
deeper than MAX_DEPTH objects and arrays is refused (BodyTooDeep), so nothing that walks a
parsed body ever meets deep nesting. The body is parsed once per request: its value, or the
reason it was refused, is kept on the request.
"""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from flask import Request

from openalgo_gtt.api.errors import BadRequest
from openalgo_gtt.services.audit import unparsed

MAX_BODY_BYTES = 1024 * 1024
# Objects and arrays inside each other, the body itself counting as one. An OpenAlgo body is 1
# deep, a sandbox tick list 3; anything near the limit is an attack, not an alert.
MAX_DEPTH = 32
TOO_DEEP = f"Request body is nested deeper than {MAX_DEPTH} levels of objects and arrays (the nesting depth limit)"


class BodyTooDeep(BadRequest):
    """A body over the nesting limit: refused for every route, before any view (api/security.py)."""

    def __init__(self):
        super().__init__(TOO_DEEP, max_depth=MAX_DEPTH)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid number")


# A JSON number whose size a float cannot hold (the audit stores numbers as JSON floats, and
# PostgreSQL's json refuses the Infinity one would become), or whose exponent Decimal cannot read.
_MAX_ADJUSTED_EXPONENT = 300


def _parse_number(text: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"the number {text[:32]} is out of range") from None
    if number and number.adjusted() > _MAX_ADJUSTED_EXPONENT:
        raise ValueError(f"the number {text[:32]} is out of range")
    return number


def parse_json_object(raw: bytes) -> dict:
    if not raw or not raw.strip():
        raise BadRequest("Request body must be a JSON object; the body is empty")
    try:
        text = raw.decode("utf-8-sig")  # a BOM from some tools is harmless
        value = json.loads(text, parse_float=_parse_number, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise BadRequest("Request body must be UTF-8 encoded JSON") from None
    except RecursionError:  # deeper than the interpreter's own limit (about a thousand)
        raise BodyTooDeep() from None
    except ValueError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    if nesting_exceeds(value, MAX_DEPTH):
        raise BodyTooDeep()
    if not isinstance(value, dict):
        raise BadRequest(f"Request body must be a JSON object, not {type(value).__name__}")
    return value


def nesting_exceeds(value, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` deep in `value` (iterative: any depth)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def walk_strings(value):
    """Every string in a parsed JSON value, object keys included (iterative: any depth)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def request_json(request: Request) -> dict:
    """The body as a dict, parsed once per request; a refusal is kept too and raised again."""
    cached = getattr(request, "_openalgo_body", None)
    if cached is None:
        refused = getattr(request, "_openalgo_body_refused", None)
        if refused is not None:
            raise refused.with_traceback(None)
        try:
            cached = parse_json_object(request.get_data(cache=True))
        except BadRequest as exc:
            request._openalgo_body_refused = exc
            raise
        request._openalgo_body = cached
    return cached


def request_json_or_none(request: Request):
    """The body for the audit record: the object if it parses, else its raw text masked and cut
    (services/audit.py `unparsed`, the one redaction of text every path uses)."""
    try:
        return request_json(request)
    except BadRequest:
        raw = request.get_data(cache=True)
        if not raw:
            return None
        return unparsed(raw)
