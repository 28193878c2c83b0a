"""Reading a request body as a JSON object, whatever its Content-Type.

TradingView posts JSON as text/plain, so the Content-Type is not trusted. Numbers with a
fraction parse as Decimal (exact to the paisa); NaN and infinities are refused.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal

from flask import Request

from openalgo_gtt.api.errors import BadRequest

MAX_BODY_BYTES = 1024 * 1024


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid number")


def parse_json_object(raw: bytes) -> dict:
    if not raw or not raw.strip():
        raise BadRequest("Request body must be a JSON object; the body is empty")
    try:
        text = raw.decode("utf-8-sig")  # a BOM from some tools is harmless
        value = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise BadRequest("Request body must be UTF-8 encoded JSON") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"Request body must be a JSON object, not {type(value).__name__}")
    return value


def request_json(request: Request) -> dict:
    """The body as a dict, parsed once per request and cached on the request."""
    cached = getattr(request, "_openalgo_body", None)
    if cached is None:
        cached = parse_json_object(request.get_data(cache=True))
        request._openalgo_body = cached
    return cached


# In a body that is not valid JSON, secrets can only be found by pattern: a secret-looking
# field's value, and any long hex run (the shape of this service's API keys).
_SECRET_VALUE = re.compile(
    r'(?i)((?:api_?key|access_token|token|secret|password)["\']?\s*[:=]\s*["\']?)[^"\',}&\s]*'
)
_HEX_RUN = re.compile(r"[0-9a-fA-F]{24,}")


def redact_text(text: str) -> str:
    return _HEX_RUN.sub("***", _SECRET_VALUE.sub(r"\1***", text))


def request_json_or_none(request: Request):
    """The body for the audit record: the object if it parses, else the redacted raw text."""
    try:
        return request_json(request)
    except BadRequest:
        raw = request.get_data(cache=True)
        if not raw:
            return None
        return {"unparsed_body": redact_text(raw[:4096].decode("utf-8", "replace"))}
