"""The "GTT orders" table (polled; 204 when nothing changed), the book as CSV, and one trigger's
legs and life."""
from __future__ import annotations

import csv
import io

from flask import Response, render_template, request

from openalgo_gtt.api.dashboard.blueprint import POLL_BOOK, bp, current_gateway, digest_of
from openalgo_gtt.api.dashboard.rows import CSV_HEADER, audit_rows, book_row, csv_rows, detail_of, ist_moment
from openalgo_gtt.api.schemas import TriggerBody, validate


def status_filter() -> str:
    return "all" if request.args.get("status") == "all" else "active"


def book_values(status: str) -> dict:
    view = current_gateway().gtts.book_view(include_all=status == "all")
    rows = [book_row(entry) for entry in view.entries]  # as the API lists them: newest first
    inner = render_template("_book_inner.html", rows=rows, status=status)
    return {"inner": inner, "seen": digest_of(inner), "status": status}


@bp.get("/ui/gtts")
def book():
    values = book_values(status_filter())
    if request.args.get("seen") == values["seen"]:
        return Response(status=204)  # nothing changed: htmx leaves the table (and the focus) alone
    return render_template("_book.html", book=values, poll_book=POLL_BOOK)


@bp.get("/ui/gtts.csv")
def book_csv():
    view = current_gateway().gtts.book_view(include_all=status_filter() == "all")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(view.entries))
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="gtt-orders.csv"'
    return response


def trigger_id_arg() -> str:
    return validate(TriggerBody, {"apikey": "", "trigger_id": request.args.get("trigger_id", "")}).trigger_id


@bp.get("/ui/gtt")
def gtt_detail():
    trigger_id = trigger_id_arg()
    gateway = current_gateway()
    entry = gateway.gtts.status(trigger_id)
    life = gateway.audit_view.life_of(trigger_id, ist_moment(entry.get("created_at")))
    return render_template("_detail.html", detail=detail_of(entry), life=audit_rows(life))


@bp.get("/ui/gtt/close")
def gtt_close():
    return ""
