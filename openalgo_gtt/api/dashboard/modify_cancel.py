"""Changing a trigger from the table: its inline Modify form, the modify, and the cancel, each
through the API's own use case (`gtts.modify_once`, `cancel_once`)."""
from __future__ import annotations

import uuid

from flask import make_response, render_template, request

from openalgo_gtt.api.dashboard import forms
from openalgo_gtt.api.dashboard.blueprint import BOOK_CHANGED, MODES, bp, current_gateway
from openalgo_gtt.api.dashboard.book import trigger_id_arg
from openalgo_gtt.api.dashboard.form_answers import (
    MODIFY_RESULT, form_refused, modify_form_fields, no_errors, order_of,
)
from openalgo_gtt.api.dashboard.rows import detail_from_form, detail_of
from openalgo_gtt.api.lifecycle import context
from openalgo_gtt.api.schemas import TriggerBody, validate


@bp.get("/ui/gtt/modify")
def modify_form():
    trigger_id = trigger_id_arg()
    entry = current_gateway().gtts.status(trigger_id)
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
        answer, status = current_gateway().gtts.modify_once(context(), parsed.trigger_id, order_of(parsed), body,
                                                            body.get("idempotency_key"))
    except Exception as exc:  # noqa: BLE001 - every refusal is shown beside its field
        return form_refused(exc, kind, MODIFY_RESULT, detail=detail)
    context().audit_response = answer
    response = make_response(render_template(MODIFY_RESULT, detail=detail, answer=answer,
                                             errors=no_errors(modify_form_fields(kind)), done=True), status)
    response.headers["HX-Trigger"] = BOOK_CHANGED
    return response


@bp.post("/ui/cancelgtt")
def cancel():
    body = {"trigger_id": str(request.form.get("trigger_id") or "").strip()}
    parsed = validate(TriggerBody, {"apikey": "", **body})
    answer, status = current_gateway().gtts.cancel_once(context(), parsed.trigger_id, body, None)
    context().audit_response = answer
    response = make_response(render_template("_message.html", kind="success",
                                             message=f"Cancelled {answer['trigger_id']}"), status)
    response.headers["HX-Trigger"] = BOOK_CHANGED
    return response
