"""Names vulture cannot see used, for `vulture openalgo_gtt vulture_whitelist.py` in CI.

Each is reached by a framework or a library, not by a call in this package. Anything added here
needs that reason; code that is simply unused is deleted instead.
"""
# Flask and flask-restx call these by registration (routes, hooks, representations, error handlers).
_output_json  # api/__init__.py: restx representation
_api_error  # api/__init__.py: restx error handler
_begin  # api/lifecycle.py: before_request
_allowed_address  # api/security.py: before_request
_login_error  # api/upstox_login.py: blueprint error handler
callback  # api/upstox_login.py: GET /upstox/callback
token_request  # api/upstox_login.py: the notifier webhook
gtt_update  # api/webhooks.py: the Upstox postback route
_guard  # api/dashboard/hooks.py: the page's before_request (session, CSRF)
_csrf_token  # api/dashboard/hooks.py: template context processor
_error  # api/dashboard/hooks.py: blueprint error handler
signin  # api/dashboard/page.py: POST /ui/signin
signout  # api/dashboard/page.py: POST /ui/signout
header  # api/dashboard/header.py: GET /ui/header
book_csv  # api/dashboard/book.py: GET /ui/gtts.csv
gtt_detail  # api/dashboard/book.py: GET /ui/gtt
gtt_close  # api/dashboard/book.py: GET /ui/gtt/close
modify_form  # api/dashboard/modify_cancel.py: GET /ui/gtt/modify
new_fields  # api/dashboard/new_gtt.py: GET /ui/new/fields
preview  # api/dashboard/new_gtt.py: GET /ui/preview
sandbox_tick  # api/dashboard/sandbox_prices.py: POST /ui/sandbox/ticks
url_rule_class  # app.py: Flask's class attribute for url rules
merge_slashes  # app.py: werkzeug Map setting
redirect_defaults  # app.py: werkzeug Map setting
# http.server calls these on its handler.
log_message  # cli/login.py
do_GET  # cli/login.py
# requests.Session setting.
trust_env  # brokers/upstox.py
# limits finds a storage class by its STORAGE_SCHEME when the class is defined.
SweptMemoryStorage  # rate_storage.py
STORAGE_SCHEME  # rate_storage.py
# StrEnum members, unpacked into module-level names in domain/model.py.
INTRADAY
DELIVERY
MTF
# ORM columns and dataclass fields read by SQLAlchemy or by attribute name from stored rows.
loaded_at  # store/models.py
open_day  # store/sandbox_models.py
filled_at  # store/sandbox_models.py, brokers/sandbox/storage.py
entries  # services/order_book.py: BookView.entries, read by the API's callers through data_json
# Restx resource classes are registered with @ns.route.
Ping
ModifyGtt
CancelGtt
GttOrderBook
GttOrderStatus
Health
LegacyPlace
LegacyCancel
LegacyOrders
PlaceGtt
SandboxTicks
OrderBook  # api/paper.py
TradeBook
PositionBook
Funds
CancelOrder
model_config  # pydantic
# Still test-only, listed to be moved or deleted next (see the closing note of issue 13):
swagger2_problems  # api/openapi.py: tests/unit/test_openapi.py and the schemathesis run
swagger2_document  # api/openapi.py
indexed_rules  # brokers/sandbox/engine.py: tests/unit/test_sandbox_engine.py
parse_storage_uri  # config/security.py: tests/unit/test_abuse.py
EXCHANGE_TO_SEGMENT  # domain/symbols.py: tests/unit/test_symbols.py
expiry_date  # domain/symbols.py
openalgo_symbol  # domain/symbols.py
instrument_from_row  # domain/symbols.py
from_engine  # store/instruments/index.py: tests and bench/bench_instruments.py
from_instruments  # store/instruments/index.py: tests (an index with no database)
# click commands, registered by their decorators (cli/*.py).
webhook_url
apikey_create
apikey_list
apikey_revoke
login_command
db_upgrade
instruments_load
sandbox_replay
notify_test
# Dataclass fields read through dataclasses.asdict (the outbox's JSON payload).
extra  # domain/notifications.py: Event.extra, kind-specific facts (the token's expiry, the limit)
# Attributes the logging module reads.
msg  # services/notifications.py: LogRecord.msg, rewritten by the scrubbing filter on Apprise's logger
# Framework methods overridden, called by Flask and waitress.
log_exception  # app.py: GatewayFlask.log_exception, called by flask-restx for every 5xx
readable  # cli/waitress_server.py: QuietServer.readable, called by waitress's event loop
# The deterministic simulation (bench/simulate.py, outside the package) moves this clock and
# checks invariant 3 with this classification.
ManualClock  # domain/clock.py
COUNTED  # domain/place_attempt.py
_one_of  # api/schemas.py: a pydantic model_validator (StatusBody: trigger_id or request_id)
