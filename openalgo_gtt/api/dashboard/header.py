"""The header (broker, token, trades today, the notifications outbox), polled; and the start of
an Upstox login from the page."""
from __future__ import annotations

from flask import Response, redirect, render_template, request

from openalgo_gtt.api.dashboard.blueprint import POLL_HEADER, bp, broker_label, current_gateway, digest_of
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.services.trade_limit import trades_text


def header_values() -> dict:
    gateway = current_gateway()
    limit = gateway.trade_limit
    broker = gateway.settings.broker
    count = limit.today_count()
    values = {"broker": broker, "broker_label": broker_label(broker),
              "trades": trades_text(count, limit.limit, limit.forced_beyond(count)), "token": None,
              "outbox": gateway.notifications.describe()}  # URLs masked, errors scrubbed
    values["queue"], values["queued"] = gateway.place.queue.waiting()  # a burst's places, in sending order
    if broker in ("upstox", "kite"):
        values["token"] = gateway.tokens.describe()
    return values


def _unless_seen(html: str) -> tuple[str, str] | None:
    """The fragment and its digest, or None when the browser already shows this very fragment
    (then a 204: htmx swaps nothing, so neither the focus nor an open form is disturbed)."""
    digest = digest_of(html)
    return None if request.args.get("seen") == digest else (html, digest)


@bp.get("/ui/header")
def header():
    inner = render_template("_header_inner.html", **header_values())
    fresh = _unless_seen(inner)
    if fresh is None:
        return Response(status=204)
    return render_template("_header.html", inner=fresh[0], seen=fresh[1], poll_header=POLL_HEADER)


@bp.get("/ui/upstox/login")
def upstox_login():
    url, _state = current_gateway().upstox_login.begin()
    context().audit_response = {"status": "success", "message": "redirected to Upstox's login"}
    return redirect(url, code=302)
