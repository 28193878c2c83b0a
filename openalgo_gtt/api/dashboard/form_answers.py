"""What the New GTT and Modify forms share: the order a parsed form asks for, the fields each
form shows (an error may be put beside any of them), and a refusal answered as the API would."""
from __future__ import annotations

import uuid

from flask import render_template, request

from openalgo_gtt.api.dashboard import forms
from openalgo_gtt.api.lifecycle import context, note_error
from openalgo_gtt.services.planner import Order

MODIFY_RESULT = "_modify_result.html"


def order_of(body) -> Order:
    return Order(symbol=body.symbol, exchange=body.exchange, intent=body.intent(), strategy=body.strategy,
                 force=body.force)


def new_form_fields(kind: str) -> tuple[str, ...]:
    return (*forms.COMMON, *(forms.BY_TYPE[kind] or (forms.SINGLE_TRIGGER,)), forms.GENERAL)


def modify_form_fields(kind: str) -> tuple[str, ...]:
    return ("quantity", *(forms.BY_TYPE[kind] or (forms.SINGLE_TRIGGER,)), forms.GENERAL)


def no_errors(fields) -> dict:
    return {name: "" for name in fields}


def form_refused(exc: Exception, kind: str, template: str, **values):
    """A refused place or modify: the answer the API would give (status, audit), the message put
    beside the field it concerns."""
    fields = modify_form_fields(kind) if template == MODIFY_RESULT else new_form_fields(kind)
    if isinstance(exc, forms.FieldErrors):
        status, envelope, errors = exc.status, {"status": "error", "message": str(exc)}, exc.errors
        context().error = str(exc)
    else:
        envelope, status = note_error(exc)
        errors = forms.field_errors(status, envelope, kind, set(fields))
    context().audit_response = envelope
    shown = {**no_errors(fields), **errors}
    # A definitive refusal used up the form's idempotency key (sending the corrected form under it
    # would be a 422, "used for a different request"): the form gets a new one. After a fault
    # (5xx: the outcome may be unknown) it keeps its key, so sending it again reconciles, never
    # places twice.
    key = str(request.form.get("idempotency_key") or "") if status >= 500 else uuid.uuid4().hex
    return render_template(template, answer=None, errors=shown, done=False, idempotency_key=key, **values), status
