"""The trader's page at `/`: see, place, modify and cancel GTTs, and read the audit trail, in a
browser. Server-rendered Jinja templates, updated in place by htmx, with htmx and Pico CSS
vendored under static/ (no CDN, no build step).

Every action goes through the same use cases as the API, with the same context (one audit row,
the daily limit, exactly-once): a place is `gateway.place`, as /api/v1/placegtt calls it, with the
very body an OpenAlgo caller would send (forms.py); modify and cancel are `gtts.modify_once` and
`cancel_once`; a sandbox price is `push_ticks`. What only the page has: the session (instead of a
key in every body), the CSRF token, and HTML instead of JSON.

Routes (all but `/` and the static files under /ui/), by the module that serves them:
    GET  /                    the page, or the sign-in form                     page.py
    POST /ui/signin, /ui/signout                                                page.py
    GET  /ui/header           broker, token, trades today, the notifications outbox (polled)
                                                                                header.py
    GET  /ui/upstox/login     starts an Upstox login for a signed-in page (audited)   header.py
    GET  /ui/gtts             the "GTT orders" table (polled; 204 when nothing changed)  book.py
    GET  /ui/gtts.csv         the book as CSV                                   book.py
    GET  /ui/gtt              one trigger's legs and life                       book.py
    GET  /ui/gtt/modify       its inline form; POST /ui/modifygtt, /ui/cancelgtt   modify_cancel.py
    GET  /ui/new/fields, /ui/preview, /ui/symbols, /ui/quote; POST /ui/placegtt   new_gtt.py
    POST /ui/sandbox/ticks                                                      sandbox_prices.py
    GET  /ui/positions        the sandbox's positions and funds line (polled)   positions.py
    GET  /ui/audit, /ui/audit/row                                               audit_trail.py
Every POST is audited and CSRF-checked (hooks.py, which also renders errors in place);
blueprint.py holds the Blueprint and what the areas share; form_answers.py what the New GTT and
Modify forms share; rows.py turns records into table rows.
"""
# Each area registers its routes on the blueprint when imported.
from openalgo_gtt.api.dashboard import (  # noqa: F401
    audit_trail, book, header, hooks, modify_cancel, new_gtt, page, positions, sandbox_prices,
)
from openalgo_gtt.api.dashboard.blueprint import bp

__all__ = ["bp"]
