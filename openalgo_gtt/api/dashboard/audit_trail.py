"""The audit trail on the page: the recent rows, filtered, and one row in full."""
from __future__ import annotations

from flask import render_template, request

from openalgo_gtt.api.dashboard.blueprint import bp, current_gateway
from openalgo_gtt.api.dashboard.rows import audit_rows
from openalgo_gtt.api.errors import ApiError


PAGE_ROWS = 25


@bp.get("/ui/audit")
def audit():
    """A page of the trail, newest first: the latest PAGE_ROWS rows, or those older than `before`
    (the "Older" button's row id)."""
    args = request.args
    before = args.get("before", "").strip()
    try:
        before_id = int(before) if before else None
        rows = current_gateway().audit_view.recent(limit=PAGE_ROWS + 1, endpoint=args.get("endpoint", "").strip(),
                                                   status=args.get("status", "").strip(),
                                                   key=args.get("key", "").strip(), before_id=before_id)
    except ValueError as exc:
        raise ApiError(400, "before: must be a whole number" if "invalid literal" in str(exc) else str(exc)) from None
    older = len(rows) > PAGE_ROWS
    rows = rows[:PAGE_ROWS]
    return render_template("_audit_rows.html", rows=audit_rows(rows), paged=before_id is not None,
                           older_than=rows[-1].id if older and rows else None)


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
