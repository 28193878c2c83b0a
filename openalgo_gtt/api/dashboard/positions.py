"""GET /ui/positions: the sandbox's paper positions and its funds line (services/paper.py),
polled and refreshed after every action, like the GTT table."""
from __future__ import annotations

from flask import Response, render_template, request

from openalgo_gtt.api.dashboard.blueprint import bp, current_gateway, digest_of
from openalgo_gtt.api.errors import ApiError
from openalgo_gtt.services.paper import SandboxOnly


@bp.get("/ui/positions")
def positions():
    gateway = current_gateway()
    if gateway.paper is None or not gateway.paper.enabled:
        raise ApiError(501, SandboxOnly(gateway.settings.broker).message)
    inner = render_template("_positions_inner.html", positions=gateway.paper.positionbook(),
                            funds=gateway.paper.funds())
    seen = digest_of(inner)
    if request.args.get("seen") == seen:
        return Response(status=204)  # nothing changed: htmx leaves the table alone
    return render_template("_positions.html", inner=inner, seen=seen)
