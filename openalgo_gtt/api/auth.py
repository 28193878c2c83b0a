"""The caller's API key: `apikey` in the JSON body (OpenAlgo), or an X-API-KEY header / `apikey`
query parameter on the seed engine's routes."""
from __future__ import annotations

from flask import current_app, request

from openalgo_gtt.api.body import request_json
from openalgo_gtt.api.errors import INVALID_APIKEY, Forbidden
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.services.apikeys import Caller


def authenticate(key: object) -> Caller:
    caller = current_app.extensions["openalgo_gtt"].api_keys.verify(key)
    if caller is None:
        raise Forbidden(INVALID_APIKEY)
    context().api_key_name = caller.name
    return caller


def caller_from_body() -> tuple[Caller, dict]:
    """Authenticate an OpenAlgo request; returns the caller and the parsed body."""
    body = request_json(request)
    return authenticate(body.get("apikey")), body


def caller_from_anywhere() -> Caller:
    """The seed engine's routes take the key from a header, the query or the body."""
    key = request.headers.get("X-API-KEY") or request.args.get("apikey")
    if not key and request.method != "GET" and request.get_data(cache=True).strip():
        key = request_json(request).get("apikey")
    return authenticate(key)
