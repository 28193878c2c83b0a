"""The "GTT orders" table (polled; 204 when nothing changed), the book as CSV, and one trigger's
legs and life."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

from flask import Response, render_template, request

from openalgo_gtt.api.dashboard.blueprint import POLL_BOOK, bp, broker_label, current_gateway, digest_of
from openalgo_gtt.api.dashboard.rows import CSV_HEADER, book_row, csv_rows, detail_of, ist_moment, life_rows
from openalgo_gtt.api.schemas import TriggerBody, validate


def status_filter() -> str:
    return "all" if request.args.get("status") == "all" else "active"


def tick_of(symbol: str, exchange: str) -> Decimal | None:
    """The instrument's tick, for showing its prices in its decimals; None when unknown."""
    try:
        return current_gateway().instruments.lookup(symbol, exchange).tick_size
    except LookupError:
        return None


def book_values(status: str) -> dict:
    gateway = current_gateway()
    view = gateway.gtts.book_view(include_all=status == "all")
    fills = gateway.fills.lines(view.entries) if gateway.fills is not None else {}
    # As the API lists them: newest first (active ones first with All states).
    rows = [{**book_row(entry, tick_of(entry.get("symbol", ""), entry.get("exchange", ""))),
             "fill": fills.get(entry["trigger_id"], "")} for entry in view.entries]
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
    asked_at = gateway.clock.now()
    entry = gateway.gtts.status(trigger_id)
    if gateway.fills is not None:  # each fired leg's order, as gttorderstatus shows it
        entry = gateway.fills.annotate(entry, fresh_since=asked_at)
    tick = tick_of(entry.get("symbol", ""), entry.get("exchange", ""))
    audited = gateway.audit_view.life_of(trigger_id, ist_moment(entry.get("created_at")))
    # A fire, a rejection or an expiry is an event of the trigger (of its pair, for an OCO leg):
    # on the sandbox a tick made it, elsewhere the watcher saw it (the broker's postback or a poll).
    events = gateway.gtts.events(entry.get("pair_trigger_id") or entry["trigger_id"])
    source = "a sandbox tick" if gateway.settings.broker == "sandbox" else "the watcher's pass"
    life = life_rows(audited, events, entry["trigger_id"], tick=tick, source=source)
    return render_template("_detail.html", detail=detail_of(entry, tick), life=life, broker_label=broker_label())


@bp.get("/ui/gtt/close")
def gtt_close():
    return ""
