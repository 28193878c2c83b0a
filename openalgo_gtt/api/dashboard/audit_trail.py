"""The audit trail on the page: the recent rows, filtered, and one row in full."""
from __future__ import annotations

from flask import render_template, request

from openalgo_gtt.api.dashboard.blueprint import bp, current_gateway
from openalgo_gtt.api.dashboard.rows import audit_rows
from openalgo_gtt.api.errors import ApiError


@bp.get("/ui/audit")
def audit():
    args = request.args
    try:
        rows = current_gateway().audit_view.recent(limit=50, endpoint=args.get("endpoint", "").strip(),
                                                   status=args.get("status", "").strip(),
                                                   key=args.get("key", "").strip())
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return render_template("_audit_rows.html", rows=audit_rows(rows))


@bp.get("/ui/audit/row")
def audit_row():
    try:
        row_id = int(request.args.get("id", ""))
    except ValueError:
        raise ApiError(400, "id: must be a whole number") from None
    row = current_gateway().audit_view.one(row_id)
    if row is None:
        raise ApiError(404, f"no audit row {row_id}")
    return render_template("_audit_row.html", row=row)
