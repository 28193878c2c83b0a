"""The New GTT form: its fields per trigger type, the symbol and last-price helpers, the preview
(the planner's plan, nothing placed) and the place, which is `gateway.place` with the body an
OpenAlgo caller would send to /api/v1/placegtt."""
from __future__ import annotations

import uuid
from decimal import Decimal

from flask import make_response, render_template, request

from openalgo_gtt.api.dashboard import forms
from openalgo_gtt.api.dashboard.blueprint import BOOK_CHANGED, MODES, bp, current_gateway
from openalgo_gtt.api.dashboard.form_answers import form_refused, new_form_fields, no_errors, order_of
from openalgo_gtt.api.dashboard.book import tick_of
from openalgo_gtt.api.dashboard.rows import leg_fires, leg_label, money
from openalgo_gtt.api.errors import error_status_and_body
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.api.schemas import validate


def new_form_values(kind: str = "SINGLE") -> dict:
    return {"kind": kind, "idempotency_key": uuid.uuid4().hex, "fields": new_form_fields(kind)}


def _last_price(symbol: str, exchange: str, *, strict: bool = False) -> Decimal | None:
    """The last price the order book would show (its 1 s quote cache), or None when unknown; an
    unknown symbol is None too, or, when `strict`, the lookup's refusal."""
    gateway = current_gateway()
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
                           last_price=money(_form_last_price(), _form_tick()))


@bp.get("/ui/symbols")
def symbols():
    names = current_gateway().instruments.symbols_starting(str(request.args.get("symbol") or ""),
                                                           str(request.args.get("exchange") or "NSE"))
    return render_template("_symbols.html", names=names)


def _form_tick() -> Decimal | None:
    symbol, exchange = str(request.values.get("symbol") or "").strip(), str(request.values.get("exchange") or "")
    return tick_of(symbol, exchange) if symbol and exchange else None


@bp.get("/ui/quote")
def quote():
    return money(_form_last_price(), _form_tick()) or "unknown"


@bp.get("/ui/preview")
def preview():
    """What "Place GTT" would send, from the same planner the place uses, without placing."""
    kind = forms.trigger_type_of(request.args)
    try:
        body = forms.api_body(request.args, _strict_last_price)
        body.pop("idempotency_key", None)
        parsed = validate(forms.PagePlaceBody, body)
        instrument, plan = current_gateway().gtts.planner.plan(order_of(parsed))
    except forms.FieldErrors as exc:
        return render_template("_preview.html", plan=None, errors=exc.errors)
    except Exception as exc:  # noqa: BLE001 - a preview shows what is wrong, beside the field
        status, envelope = error_status_and_body(exc)
        if status >= 500:
            raise
        return render_template("_preview.html", plan=None,
                               errors=forms.field_errors(status, envelope, kind, set(new_form_fields(kind))))
    legs = [{"label": leg_label(leg.get("role")), "price": money(leg.get("trigger_price"), instrument.tick_size),
             "fires": leg_fires(leg.get("trigger_type"))} for leg in plan.legs]
    return render_template("_preview.html", plan=plan, legs=legs, instrument=instrument, errors={})


@bp.post("/ui/placegtt")
def place():
    kind = forms.trigger_type_of(request.form)
    try:
        body = forms.api_body(request.form, _strict_last_price)
        parsed = validate(forms.PagePlaceBody, body)
        answer, status = current_gateway().place(context(), order_of(parsed), body, body.get("idempotency_key"))
    except Exception as exc:  # noqa: BLE001 - every refusal is shown beside its field
        return form_refused(exc, kind, "_place_result.html")
    context().audit_response = answer
    response = make_response(render_template("_place_result.html", answer=answer,
                                             errors=no_errors(new_form_fields(kind)),
                                             idempotency_key=uuid.uuid4().hex, done=True), status)
    response.headers["HX-Trigger"] = BOOK_CHANGED
    return response
