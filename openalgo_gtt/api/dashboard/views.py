"""The trader's page at `/`: server-rendered Jinja templates, updated in place by htmx.

Every action goes through the same use cases as the API, with the same context (one audit row,
the daily limit, exactly-once): a place is `gateway.place`, as /api/v1/placegtt calls it, with the
very body an OpenAlgo caller would send (forms.py); modify and cancel are `gtts.modify_once` and
`cancel_once`; a sandbox price is `push_ticks`. What only the page has: the session (instead of a
key in every body), the CSRF token, and HTML instead of JSON.

Routes (all but `/` and the static files under /ui/):
    GET  /                    the page, or the sign-in form
    POST /ui/signin, /ui/signout
    GET  /ui/header           broker, token, trades today, the notifications outbox (polled)
    GET  /ui/gtts             the "GTT orders" table (polled; 204 when nothing changed)
    GET  /ui/gtts.csv         the book as CSV
    GET  /ui/gtt              one trigger's legs and life;  GET /ui/gtt/modify: its inline form
    POST /ui/placegtt, /ui/modifygtt, /ui/cancelgtt, /ui/sandbox/ticks   (audited, CSRF-checked)
    GET  /ui/new/fields, /ui/preview, /ui/symbols, /ui/quote      the New GTT form's helpers
    GET  /ui/audit, /ui/audit/row                                 the audit trail
    GET  /ui/upstox/login     starts an Upstox login for a signed-in page (audited)
"""
from __future__ import annotations

import csv
import hashlib
import io
import secrets
import uuid
from decimal import Decimal

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from openalgo_gtt.api.auth import presented_key, verify_key
from openalgo_gtt.api.dashboard import forms
from openalgo_gtt.api.dashboard.rows import (
    CSV_HEADER, audit_rows, book_row, csv_rows, detail_from_form, detail_of, ist_moment, money,
)
from openalgo_gtt.api.errors import INVALID_APIKEY, ApiError, BadRequest, error_status_and_body
from openalgo_gtt.api.lifecycle import context, note_error
from openalgo_gtt.api.page_session import (
    CSRF_FIELD, SESSION_COOKIE, SIGNIN_COOKIE, clear_cookie, csrf_ok, current_session, set_cookie, sessions,
)
from openalgo_gtt.api.ratelimits import RateLimitRefused
from openalgo_gtt.api.schemas import TriggerBody, strict_decimal, validate
from openalgo_gtt.api.security import NUL_REFUSED
from openalgo_gtt.services.audit import redact
from openalgo_gtt.services.planner import Order
from openalgo_gtt.services.sandbox_feed import NotSandbox, PriceTick, push_ticks

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/ui/static")

EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NSE_INDEX", "BSE_INDEX")
PRODUCTS = ("CNC", "NRML", "MIS", "MTF")
MODES = ("auto", "manual", "percent")
POLL_BOOK = "every 2s"  # within 5 s of a change, a fire at the broker included
POLL_HEADER = "every 5s"
BOOK_CHANGED = "book-changed"  # the HX-Trigger event after an action: refresh at once
SIGNED_OUT = "Signed out: sign in again"
CSRF_REFUSED = "Missing or wrong CSRF token: reload the page"


class NotSignedIn(ApiError):
    def __init__(self):
        super().__init__(401, SIGNED_OUT)


def _gateway():
    return current_app.extensions["openalgo_gtt"]


def _on_sandbox() -> bool:
    return _gateway().settings.broker == "sandbox"


def _htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


# -- every request on the page ----------------------------------------------------------------

@bp.before_request
def _guard():
    ctx = context()
    # The audit keeps a form as the fields it sent (the key masked, the CSRF token left out).
    ctx.audit_body = lambda _status: redact({k: v for k, v in request.form.items() if k != CSRF_FIELD}) or None
    # As api/security.py refuses them in a query or a JSON body: PostgreSQL cannot store a NUL.
    if any("\x00" in k or "\x00" in v for k, v in request.form.items(multi=True)):
        raise BadRequest(NUL_REFUSED)
    if request.endpoint in ("dashboard.page", "dashboard.signin", "dashboard.static"):
        return None
    session = current_session()
    if session is None:
        raise NotSignedIn()
    ctx.api_key_name = session.caller.name
    if request.method == "POST" and not csrf_ok():
        raise ApiError(403, CSRF_REFUSED)
    return None


@bp.context_processor
def _csrf_token():
    def csrf_token() -> str:
        session = current_session()
        return session.csrf_token if session is not None else ""
    return {"csrf_token": csrf_token}


@bp.errorhandler(Exception)
def _error(exc):
    if isinstance(exc, HTTPException) and exc.code and exc.code < 400:
        return exc
    body, status = note_error(exc)
    context().audit_response = body
    signing_in = request.endpoint in ("dashboard.page", "dashboard.signin")
    if isinstance(exc, NotSignedIn) or (isinstance(exc, RateLimitRefused) and signing_in):
        if _htmx():
            response = Response(status=status)
            response.headers["HX-Redirect"] = "/"
            return response
        return _signin_page(body["message"] if not isinstance(exc, NotSignedIn) else None, status)
    message = render_template("_message.html", kind="error", message=body["message"])
    # A poll that failed (Upstox down, a rate limit) says so in place and goes on polling: the
    # polled element is drawn again around the message instead of being replaced by it.
    if request.endpoint == "dashboard.book":
        book = {"inner": message, "seen": "", "status": _status_filter()}
        return render_template("_book.html", book=book, poll_book=POLL_BOOK), status
    if request.endpoint == "dashboard.header":
        return render_template("_header.html", inner=message, seen="", poll_header=POLL_HEADER), status
    if _htmx():
        return message, status
    return render_template("error.html", message=body["message"]), status


def _signin_page(message: str | None, status: int = 200):
    token = secrets.token_urlsafe(24)
    response = make_response(render_template("signin.html", message=message, signin_csrf=token), status)
    set_cookie(response, SIGNIN_COOKIE, token, max_age=3600)
    return response


# -- signing in and out -------------------------------------------------------------------------

@bp.get("/")
def page():
    session = current_session()
    if session is None:
        return _signin_page(None)
    header_inner = render_template("_header_inner.html", **_header_values())
    return render_template("page.html", session=session, csrf=session.csrf_token, header_inner=header_inner,
                           header_seen=_digest(header_inner),
                           book=_book_values("active"), new=_new_form_values(), sandbox=_on_sandbox(),
                           exchanges=EXCHANGES, products=PRODUCTS, modes=MODES, poll_book=POLL_BOOK,
                           poll_header=POLL_HEADER)


@bp.post("/ui/signin")
def signin():
    ctx = context()
    expected = request.cookies.get(SIGNIN_COOKIE)
    if not expected or not secrets.compare_digest(expected, str(request.form.get(CSRF_FIELD) or "")):
        raise ApiError(403, CSRF_REFUSED)
    caller = verify_key(presented_key())  # the API's verifier; the throttle counted this request already
    if caller is None:
        ctx.error = INVALID_APIKEY  # the failed-key throttle counts exactly this (api/ratelimits.py)
        ctx.audit_response = {"status": "error", "message": INVALID_APIKEY}
        return _signin_page("Invalid API key", 403)
    ctx.api_key_name = caller.name
    started = sessions().start(caller)
    ctx.audit_response = {"status": "success", "message": "signed in",
                          "expires_at": started.session.expires_at.isoformat()}
    response = redirect("/", code=303)
    set_cookie(response, SESSION_COOKIE, started.token, expires=started.session.expires_at,
               max_age=int(sessions().lifetime.total_seconds()))
    clear_cookie(response, SIGNIN_COOKIE)
    return response


@bp.post("/ui/signout")
def signout():
    sessions().end(request.cookies.get(SESSION_COOKIE))
    context().audit_response = {"status": "success", "message": "signed out"}
    response = redirect("/", code=303)
    clear_cookie(response, SESSION_COOKIE)
    if _htmx():
        response = Response(status=200)
        response.headers["HX-Redirect"] = "/"
        clear_cookie(response, SESSION_COOKIE)
    return response


# -- the header ---------------------------------------------------------------------------------

def _header_values() -> dict:
    gateway = _gateway()
    limit = gateway.trade_limit
    broker = gateway.settings.broker
    values = {"broker": broker, "broker_label": {"kite": "Kite", "upstox": "Upstox"}.get(broker, "Sandbox"),
              "trades": limit.today_count(), "limit": limit.limit, "token": None,
              "outbox": gateway.notifications.describe()}  # URLs masked, errors scrubbed
    if broker in ("upstox", "kite"):
        values["token"] = gateway.tokens.describe()
    return values


def _digest(html: str) -> str:
    return hashlib.sha256(html.encode()).hexdigest()[:16]


def _unless_seen(html: str) -> tuple[str, str] | None:
    """The fragment and its digest, or None when the browser already shows this very fragment
    (then a 204: htmx swaps nothing, so neither the focus nor an open form is disturbed)."""
    digest = _digest(html)
    return None if request.args.get("seen") == digest else (html, digest)


@bp.get("/ui/header")
def header():
    inner = render_template("_header_inner.html", **_header_values())
    fresh = _unless_seen(inner)
    if fresh is None:
        return Response(status=204)
    return render_template("_header.html", inner=fresh[0], seen=fresh[1], poll_header=POLL_HEADER)


@bp.get("/ui/upstox/login")
def upstox_login():
    url, _state = _gateway().upstox_login.begin()
    context().audit_response = {"status": "success", "message": "redirected to Upstox's login"}
    return redirect(url, code=302)


# -- the GTT orders table ---------------------------------------------------------------------------

def _status_filter() -> str:
    return "all" if request.args.get("status") == "all" else "active"


def _book_values(status: str) -> dict:
    view = _gateway().gtts.book_view(include_all=status == "all")
    rows = [book_row(entry) for entry in view.entries]
    rows.reverse()  # newest first
    inner = render_template("_book_inner.html", rows=rows, status=status)
    return {"inner": inner, "seen": _digest(inner), "status": status}


@bp.get("/ui/gtts")
def book():
    values = _book_values(_status_filter())
    if request.args.get("seen") == values["seen"]:
        return Response(status=204)  # nothing changed: htmx leaves the table (and the focus) alone
    return render_template("_book.html", book=values, poll_book=POLL_BOOK)


@bp.get("/ui/gtts.csv")
def book_csv():
    view = _gateway().gtts.book_view(include_all=_status_filter() == "all")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(view.entries))
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="gtt-orders.csv"'
    return response


def _trigger_id_arg() -> str:
    return validate(TriggerBody, {"apikey": "", "trigger_id": request.args.get("trigger_id", "")}).trigger_id


@bp.get("/ui/gtt")
def gtt_detail():
    trigger_id = _trigger_id_arg()
    gateway = _gateway()
    entry = gateway.gtts.status(trigger_id)
    life = gateway.audit_view.life_of(trigger_id, ist_moment(entry.get("created_at")))
    return render_template("_detail.html", detail=detail_of(entry), life=audit_rows(life))


@bp.get("/ui/gtt/close")
def gtt_close():
    return ""


@bp.get("/ui/gtt/modify")
def modify_form():
    trigger_id = _trigger_id_arg()
    entry = _gateway().gtts.status(trigger_id)
    return render_template("_modify.html", detail=detail_of(entry), errors={}, modes=MODES,
                           idempotency_key=uuid.uuid4().hex)


@bp.post("/ui/modifygtt")
def modify():
    """The API's modify with the body an OpenAlgo caller sends: the form's hidden fields name the
    trigger as it stands (the use case refuses a change of instrument, action, product or type,
    as it does for the API), its visible ones the new quantity and prices."""
    detail = detail_from_form(request.form)
    kind = detail["api_type"]
    body = forms.api_body(request.form)  # a modify keeps its direction: no last price needed
    body["trigger_id"] = detail["trigger_id"]
    try:
        parsed = validate(forms.PageModifyBody, body)
        answer, status = _gateway().gtts.modify_once(context(), parsed.trigger_id, _order(parsed), body,
                                                     body.get("idempotency_key"))
    except Exception as exc:  # noqa: BLE001 - every refusal is shown beside its field
        return _form_refused(exc, kind, "_modify_result.html", detail=detail)
    context().audit_response = answer
    response = make_response(render_template("_modify_result.html", detail=detail, answer=answer,
                                             errors=_no_errors(_modify_fields(kind)), done=True), status)
    response.headers["HX-Trigger"] = BOOK_CHANGED
    return response


@bp.post("/ui/cancelgtt")
def cancel():
    body = {"trigger_id": str(request.form.get("trigger_id") or "").strip()}
    parsed = validate(TriggerBody, {"apikey": "", **body})
    answer, status = _gateway().gtts.cancel_once(context(), parsed.trigger_id, body, None)
    context().audit_response = answer
    response = make_response(render_template("_message.html", kind="success",
                                             message=f"Cancelled {answer['trigger_id']}"), status)
    response.headers["HX-Trigger"] = BOOK_CHANGED
    return response


# -- New GTT --------------------------------------------------------------------------------------

def _order(body) -> Order:
    return Order(symbol=body.symbol, exchange=body.exchange, intent=body.intent(), strategy=body.strategy,
                 force=body.force)


def _new_form_values(kind: str = "SINGLE") -> dict:
    return {"kind": kind, "idempotency_key": uuid.uuid4().hex, "fields": _new_fields(kind)}


def _new_fields(kind: str) -> tuple[str, ...]:
    return (*forms.COMMON, *(forms.BY_TYPE[kind] or (forms.SINGLE_TRIGGER,)), forms.GENERAL)


def _modify_fields(kind: str) -> tuple[str, ...]:
    return ("quantity", *(forms.BY_TYPE[kind] or (forms.SINGLE_TRIGGER,)), forms.GENERAL)


def _no_errors(fields) -> dict:
    return {name: "" for name in fields}


def _last_price(symbol: str, exchange: str, *, strict: bool = False) -> Decimal | None:
    """The last price the order book would show (its 1 s quote cache), or None when unknown; an
    unknown symbol is None too, or, when `strict`, the lookup's refusal."""
    gateway = _gateway()
    try:
        info = gateway.instruments.lookup(symbol, exchange)
    except LookupError:
        if strict:
            raise
        return None
    quote = gateway.gtts.order_book.quotes([info.instrument_key]).get(info.instrument_key)
    return quote.last_price if quote is not None and quote.last_price > 0 else None


def _form_last_price(strict: bool = False) -> Decimal | None:
    symbol, exchange = str(request.values.get("symbol") or "").strip(), str(request.values.get("exchange") or "")
    return _last_price(symbol, exchange, strict=strict) if symbol and exchange else None


def _strict_last_price() -> Decimal | None:
    return _form_last_price(strict=True)


@bp.get("/ui/new/fields")
def new_fields():
    kind = forms.trigger_type_of(request.args)
    return render_template("_type_fields.html", kind=kind, modes=MODES, errors={},
                           last_price=money(_form_last_price()))


@bp.get("/ui/symbols")
def symbols():
    names = _gateway().instruments.symbols_starting(str(request.args.get("symbol") or ""),
                                                    str(request.args.get("exchange") or "NSE"))
    return render_template("_symbols.html", names=names)


@bp.get("/ui/quote")
def quote():
    return money(_form_last_price()) or "unknown"


@bp.get("/ui/preview")
def preview():
    """What "Place GTT" would send, from the same planner the place uses, without placing."""
    kind = forms.trigger_type_of(request.args)
    try:
        body = forms.api_body(request.args, _strict_last_price)
        body.pop("idempotency_key", None)
        parsed = validate(forms.PagePlaceBody, body)
        instrument, plan = _gateway().gtts.planner.plan(_order(parsed))
    except forms.FieldErrors as exc:
        return render_template("_preview.html", plan=None, errors=exc.errors)
    except Exception as exc:  # noqa: BLE001 - a preview shows what is wrong, beside the field
        status, envelope = error_status_and_body(exc)
        if status >= 500:
            raise
        return render_template("_preview.html", plan=None,
                               errors=forms.field_errors(status, envelope, kind, set(_new_fields(kind))))
    return render_template("_preview.html", plan=plan, instrument=instrument, errors={})


@bp.post("/ui/placegtt")
def place():
    kind = forms.trigger_type_of(request.form)
    try:
        body = forms.api_body(request.form, _strict_last_price)
        parsed = validate(forms.PagePlaceBody, body)
        answer, status = _gateway().place(context(), _order(parsed), body, body.get("idempotency_key"))
    except Exception as exc:  # noqa: BLE001 - every refusal is shown beside its field
        return _form_refused(exc, kind, "_place_result.html")
    context().audit_response = answer
    response = make_response(render_template("_place_result.html", answer=answer, errors=_no_errors(_new_fields(kind)),
                                             idempotency_key=uuid.uuid4().hex, done=True), status)
    response.headers["HX-Trigger"] = BOOK_CHANGED
    return response


def _form_refused(exc: Exception, kind: str, template: str, **values):
    """A refused place or modify: the answer the API would give (status, audit), the message put
    beside the field it concerns."""
    fields = _modify_fields(kind) if template == "_modify_result.html" else _new_fields(kind)
    if isinstance(exc, forms.FieldErrors):
        status, envelope, errors = exc.status, {"status": "error", "message": str(exc)}, exc.errors
        context().error = str(exc)
    else:
        envelope, status = note_error(exc)
        errors = forms.field_errors(status, envelope, kind, set(fields))
    context().audit_response = envelope
    shown = {**_no_errors(fields), **errors}
    # A definitive refusal used up the form's idempotency key (sending the corrected form under it
    # would be a 422, "used for a different request"): the form gets a new one. After a fault
    # (5xx: the outcome may be unknown) it keeps its key, so sending it again reconciles, never
    # places twice.
    key = str(request.form.get("idempotency_key") or "") if status >= 500 else uuid.uuid4().hex
    return render_template(template, answer=None, errors=shown, done=False, idempotency_key=key, **values), status


# -- sandbox --------------------------------------------------------------------------------------

@bp.post("/ui/sandbox/ticks")
def sandbox_tick():
    symbol = str(request.form.get("symbol") or "").strip()
    exchange = str(request.form.get("exchange") or "NSE").strip()
    try:
        price = strict_decimal(str(request.form.get("price") or "").strip())
        if price <= 0:
            raise ValueError
    except Exception:  # noqa: BLE001 - any unreadable price
        raise ApiError(400, "price: must be a positive number such as 9.56") from None
    if not symbol:
        raise ApiError(400, "symbol: a symbol is required")
    try:
        fired = push_ticks(_gateway(), [PriceTick(symbol, exchange, price)])
    except NotSandbox as exc:
        raise ApiError(409, str(exc)) from None
    answer = {"status": "success", "mode": "analyze", "applied": 1,
              "fired": [{"gtt_id": e.gtt_id, "price": e.price, "transaction_type": e.transaction_type} for e in fired]}
    context().audit_response = answer
    said = f"Pushed {symbol.upper()} at {money(price)}"
    said += (": fired " + ", ".join(f"{e.gtt_id} ({e.transaction_type} at {money(e.price)})" for e in fired)
             if fired else ": nothing fired")
    response = make_response(render_template("_message.html", kind="success", message=said))
    response.headers["HX-Trigger"] = BOOK_CHANGED
    return response


# -- the audit trail ------------------------------------------------------------------------------

@bp.get("/ui/audit")
def audit():
    args = request.args
    try:
        rows = _gateway().audit_view.recent(limit=50, endpoint=args.get("endpoint", "").strip(),
                                            status=args.get("status", "").strip(), key=args.get("key", "").strip())
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return render_template("_audit_rows.html", rows=audit_rows(rows))


@bp.get("/ui/audit/row")
def audit_row():
    try:
        row_id = int(request.args.get("id", ""))
    except ValueError:
        raise ApiError(400, "id: must be a whole number") from None
    row = _gateway().audit_view.one(row_id)
    if row is None:
        raise ApiError(404, f"no audit row {row_id}")
    return render_template("_audit_row.html", row=row)
