"""The page's blueprint, and what its areas share: the gateway, whether a request came from
htmx, a fragment's digest, and the names the templates and the areas agree on."""
from __future__ import annotations

import hashlib

from flask import Blueprint, current_app, request

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/ui/static")

EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NSE_INDEX", "BSE_INDEX")
PRODUCTS = ("CNC", "NRML", "MIS", "MTF")
MODES = ("auto", "manual", "percent")
POLL_BOOK = "every 2s"  # within 5 s of a change, a fire at the broker included
POLL_HEADER = "every 5s"
BOOK_CHANGED = "book-changed"  # the HX-Trigger event after an action: refresh at once
CSRF_REFUSED = "Missing or wrong CSRF token: reload the page"


def current_gateway():
    return current_app.extensions["openalgo_gtt"]


def broker_label(broker: str | None = None) -> str:
    """The broker in use as the page names it: Upstox, Kite or Sandbox."""
    broker = current_gateway().settings.broker if broker is None else broker
    return {"kite": "Kite", "upstox": "Upstox"}.get(broker, "Sandbox")


def on_sandbox() -> bool:
    return current_gateway().settings.broker == "sandbox"


def from_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def digest_of(html: str) -> str:
    return hashlib.sha256(html.encode()).hexdigest()[:16]
