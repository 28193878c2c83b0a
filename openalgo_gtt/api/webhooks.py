"""Upstox's GTT update webhook: `POST /upstox/postback/<secret>`.

Point the Upstox app's postback URL here (`python run.py webhook-url` prints it). The secret in
the path authenticates Upstox (it cannot send our API key); a wrong one is a plain 404.
"""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, request

from openalgo_gtt.api.body import request_json
from openalgo_gtt.api.errors import ApiError
from openalgo_gtt.api.lifecycle import json_response
from openalgo_gtt.brokers.errors import BrokerError

log = logging.getLogger(__name__)

blueprint = Blueprint("upstox_webhooks", __name__, url_prefix="/upstox")


@blueprint.post("/postback/<secret>")
def gtt_update(secret: str):
    gateway = current_app.extensions["openalgo_gtt"]
    if not hmac.compare_digest(secret.encode(), gateway.webhook_secret.encode()):
        raise ApiError(404, "Not found")
    update = request_json(request)
    gtt_id = update.get("gtt_order_id")
    settled = False
    if update.get("update_type") == "gtt_order" and isinstance(gtt_id, str):
        try:
            settled = gateway.watcher.settle_broker_gtt(gtt_id)
        except BrokerError as exc:
            # Upstox is not the one to retry this: the lease holder's next poll will.
            log.warning("webhook for %s could not be settled now: %s", gtt_id, exc)
        gateway.watcher.wake()
    return json_response({"status": "success", "settled": settled})
