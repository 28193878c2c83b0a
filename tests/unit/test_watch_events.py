"""What the watcher records and tells the trader for each broker change (domain/watch.py), and
how a message reads (domain/notifications.py). Pure functions: no database, no broker."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from openalgo_gtt.domain.model import BrokerGtt, RuleState
from openalgo_gtt.domain.notifications import Event, mask_url, redact, render, split_urls
from openalgo_gtt.domain.watch import Watched, observe

NOW = datetime(2026, 12, 2, 11, 33, 12, tzinfo=timezone.utc)  # 17:03:12 IST


def gtt(gtt_id, *rules, type_="SINGLE", quantity=10):
    return BrokerGtt(gtt_id=gtt_id, type=type_, instrument_key="NSE_EQ|INE669E01016", segment="NSE_EQ",
                     trading_symbol="IDEA", quantity=quantity, product="D", rules=tuple(rules))


def rule(strategy, status, price, trigger_type="IMMEDIATE", side="SELL", **extra):
    return RuleState(strategy=strategy, trigger_type=trigger_type, trigger_price=Decimal(price), transaction_type=side,
                     status=status, **extra)


def watched(trigger_id, kind="single", broker_ids=None, status="active", state=None, legs=(), leg_rows=None):
    return Watched(trigger_id, kind, broker_ids or [trigger_id], "IDEA", "NSE", "BUY", 10, list(legs), status, None,
                   state or {}, leg_rows or {})


def bracket(entry, target, stop, **entry_extra):
    return gtt("GTT-B1", rule("ENTRY", entry, "10.40", "ABOVE", "BUY", **entry_extra), rule("TARGET", target, "10.50"),
               rule("STOPLOSS", stop, "10.30"), type_="MULTIPLE")


def test_nothing_changed_is_nothing_to_write():
    assert observe(watched("GTT-1"), [gtt("GTT-1", rule("ENTRY", "SCHEDULED", "9.61", "ABOVE", "BUY"))], NOW) is None
    # A GTT the list no longer shows tells nothing (Upstox omits completed ones).
    assert observe(watched("GTT-1"), [None], NOW) is None


def test_a_single_that_fires_is_one_triggered_event_with_its_order():
    change = observe(watched("GTT-1"), [gtt("GTT-1", rule("ENTRY", "TRIGGERED", "9.61", "ABOVE", "BUY",
                                                        order_id="251202000123"))], NOW)
    assert change.status == "triggered" and change.broker_state == {"GTT-1": {"ENTRY": "TRIGGERED"}}
    (event,) = change.events
    message = render(event)
    assert (message.title, message.level) == ("GTT triggered", "success")
    assert message.body == "BUY 10 IDEA (NSE) above 9.61 — GTT-1, order 251202000123\n2026-12-02 17:03:12 IST"
    # The child order filling (OPEN -> COMPLETED) is no news, and no write.
    recorded = watched("GTT-1", status="triggered", state=change.broker_state)
    assert observe(recorded, [gtt("GTT-1", rule("ENTRY", "COMPLETED", "9.61", "ABOVE", "BUY"))], NOW) is None


def test_a_rejection_carries_the_brokers_reason():
    change = observe(watched("GTT-1"), [gtt("GTT-1", rule("ENTRY", "FAILED", "9.61", "ABOVE", "BUY",
                                                        message="EDIS authorisation missing"))], NOW)
    (event,) = change.events
    assert event.kind == "rejected" and render(event).level == "failure"
    assert "EDIS authorisation missing" in render(event).body
    assert (change.status, change.message) == ("rejected", "EDIS authorisation missing")


def test_a_bracket_tells_its_entry_then_its_exit_not_the_exit_cancelled_because_of_it():
    entered = observe(watched("GTT-B1", "bracket"), [bracket("TRIGGERED", "SCHEDULED", "SCHEDULED")], NOW)
    assert entered.status == "active"  # the exits can still fire
    assert [(e.kind, e.leg, e.action) for e in entered.events] == [("triggered", "entry", "BUY")]
    exited = observe(watched("GTT-B1", "bracket", state=entered.broker_state),
                     [bracket("COMPLETED", "COMPLETED", "CANCELLED")], NOW)
    assert exited.status == "triggered"
    assert [(e.kind, e.leg, e.action) for e in exited.events] == [("triggered", "target", "SELL")]
    assert render(exited.events[0]).body.startswith("SELL 10 IDEA (NSE) at 10.50 — GTT-B1 (target leg)")


def test_an_expired_bracket_is_one_event():
    change = observe(watched("GTT-B1", "bracket"), [bracket("EXPIRED", "EXPIRED", "EXPIRED")], NOW)
    assert [e.kind for e in change.events] == ["expired"]


def test_a_cancel_in_the_upstox_app_is_told():
    change = observe(watched("GTT-1"), [gtt("GTT-1", rule("ENTRY", "CANCELLED", "9.61", "ABOVE", "BUY"))], NOW)
    assert [e.kind for e in change.events] == ["cancelled_at_broker"]
    assert change.status == "cancelled"


OCO_LEGS = [{"role": "stoploss", "action": "SELL", "trigger_type": "BELOW", "trigger_price": "1480"},
            {"role": "target", "action": "SELL", "trigger_type": "ABOVE", "trigger_price": "1620"}]


def oco(lower_status, upper_status):
    w = watched("OCO-1", "two-leg", ["GTT-L", "GTT-U"], legs=OCO_LEGS,
                leg_rows={"GTT-L": ("SCHEDULED", None), "GTT-U": ("SCHEDULED", None)})
    lower = gtt("GTT-L", rule("ENTRY", lower_status, "1480", "BELOW", "SELL"))
    upper = gtt("GTT-U", rule("ENTRY", upper_status, "1620", "ABOVE", "SELL", order_id="251202000200"))
    return observe(w, [lower, upper], NOW)


def test_an_oco_leg_firing_settles_the_pair_and_says_so():
    change = oco("SCHEDULED", "TRIGGERED")
    assert change.to_cancel == ["GTT-L"] and change.status == "triggered"
    assert [(e.kind, e.leg) for e in change.events] == [("triggered", "target"), ("oco_settled", None)]
    assert render(change.events[0]).body.startswith("SELL 10 IDEA (NSE) above 1620.00 — OCO-1 (target leg GTT-U), "
                                                    "order 251202000200")
    assert ("GTT-L", "CANCELLED", "cancelled by the gateway: the other leg (GTT-U) fired") in change.leg_updates
    assert oco("SCHEDULED", "SCHEDULED") is None


def test_both_oco_legs_firing_is_a_failure_message():
    change = oco("TRIGGERED", "TRIGGERED")
    assert change.to_cancel == []
    assert [e.kind for e in change.events] == ["triggered", "triggered", "oco_both_fired"]
    assert render(change.events[-1]).level == "failure"


def test_an_event_survives_its_json_round_trip():
    event = Event(kind="token_expiring", at=NOW, message="log in again", extra={"expires_at": "2026-12-03 03:30:00"})
    assert Event.from_json(event.to_json()) == event


def test_urls_are_shown_without_their_secrets():
    assert mask_url("json://alice:pw@127.0.0.1:8080/hook") == "json://127.0.0.1:8080"
    assert mask_url("tgram://123456:AAH-secret-token/987654321") == "tgram://…"
    assert mask_url("ntfys://ntfy.sh/my-private-topic") == "ntfys://ntfy.sh"
    assert mask_url("ntfy://my-private-topic") == "ntfy://…"
    url = "tgram://123456:AAH-secret-token/987654321"
    scrubbed = redact("POST https://api.telegram.org/bot123456:AAH-secret-token/sendMessage failed for 987654321", [url])
    assert "AAH-secret-token" not in scrubbed and "987654321" not in scrubbed


def test_notify_urls_split_on_spaces_and_commas():
    assert split_urls(" json://a.b/x ,tgram://1:2/3\nntfy://t ") == ("json://a.b/x", "tgram://1:2/3", "ntfy://t")
