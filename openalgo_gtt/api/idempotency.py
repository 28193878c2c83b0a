"""The caller's idempotency key, as the API takes it: the body's `idempotency_key`, else the
Idempotency-Key header (services/exactly_once.py gives it its meaning)."""
from __future__ import annotations

from flask import request

from openalgo_gtt.api.errors import BadRequest


def idempotency_key(body: dict) -> object:
    """The key the caller gave. Both given and different is a 400: which one the caller meant
    cannot be known, and a wrong guess could place the same order twice."""
    in_body = body.get("idempotency_key")
    in_header = request.headers.get("Idempotency-Key")
    if in_body and in_header and str(in_body).strip() != in_header.strip():
        raise BadRequest("idempotency_key in the body and the Idempotency-Key header differ: send one key")
    return in_body or in_header
