"""POST /api/v1/gttorderbook under concurrent callers, through the Flask app against the fake
Upstox: shared list calls, answers never older than the request, errors to every caller that
shared a failed fetch, and the body and audit row as before the sharing.

The first list call is held open on an event, so callers arrive while it is under way by
construction; the only time limit is a guard against a hang."""
from __future__ import annotations

import json
import threading
from decimal import Decimal

from sqlalchemy import select

from openalgo_gtt.domain.model import SINGLE, GttRequest, GttRule
from openalgo_gtt.brokers.errors import BrokerFailure
from openalgo_gtt.domain.encoding import dumps
from tests.waiting import HANG_GUARD, until
from openalgo_gtt.store.models import AuditRecord

IDEA = "NSE_EQ|INE669E01016"
SINGLE_BUY = {
    "strategy": "Python", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
    "product": "CNC", "quantity": 1, "pricetype": "LIMIT", "price": 9.55, "triggerprice_tg": 9.55,
}


class HeldList:
    """Wraps the broker's list_gtts: the first call lists, sets `listed`, then waits for
    `release`; a later call raises `fail_next` once if it is set."""

    def __init__(self, broker):
        self._list = broker.list_gtts
        self.calls = 0
        self.listed = threading.Event()
        self.release = threading.Event()
        self.fail_next: Exception | None = None
        broker.list_gtts = self

    def __call__(self):
        self.calls += 1
        if self.calls > 1 and self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        listed = self._list()
        if self.calls == 1:
            self.listed.set()
            assert self.release.wait(HANG_GUARD), "the held list call was never released"
        return listed


class Books:
    """Book requests, each on a thread of its own with its own test client."""

    def __init__(self, app, key):
        self._app, self._key = app, key
        self._threads: list[threading.Thread] = []
        self._answers: dict[int, object] = {}

    def ask(self, body=None) -> int:
        n = len(self._threads)

        def send():
            self._answers[n] = self._app.test_client().post(
                "/api/v1/gttorderbook", data=json.dumps({"apikey": self._key, **(body or {})}),
                content_type="application/json")

        thread = threading.Thread(target=send, daemon=True)
        self._threads.append(thread)
        thread.start()
        return n

    def answer(self, n: int):
        self._threads[n].join(HANG_GUARD)
        assert not self._threads[n].is_alive(), "a book request never returned"
        return self._answers[n]


def place(client, key, **fields) -> str:
    response = client.post("/api/v1/placegtt", data=json.dumps({"apikey": key, **SINGLE_BUY, **fields}),
                           content_type="application/json")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["trigger_id"]


def shown(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [entry["trigger_id"] for entry in response.get_json()["data"]]


def test_a_book_asked_during_a_fetch_shows_what_changed_before_it_was_asked(upstox_client, upstox_key,
                                                                               upstox_gateway):
    first_gtt = place(upstox_client, upstox_key)
    held = HeldList(upstox_gateway.broker)
    books = Books(upstox_client.application, upstox_key)
    early = books.ask()
    until(held.listed.is_set, "the first book's list call has its answer")
    # Placed elsewhere (in the Upstox app, say) while that list call is under way.
    second_gtt = upstox_gateway.broker.place_gtt(
        GttRequest(SINGLE, IDEA, "BUY", "D", 1, (GttRule("ENTRY", "ABOVE", Decimal("9.70")),)))
    late = books.ask()
    until(lambda: upstox_gateway.gtts.order_book.waiting == 1, "the second book waits")
    held.release.set()
    assert shown(books.answer(early)) == [first_gtt]
    assert shown(books.answer(late)) == [second_gtt, first_gtt]  # newest first
    assert held.calls == 2


def test_concurrent_books_share_list_calls(upstox_client, upstox_key, upstox_gateway, fake_upstox):
    trigger_id = place(upstox_client, upstox_key)
    held = HeldList(upstox_gateway.broker)
    fake_upstox.clear_calls()
    books = Books(upstox_client.application, upstox_key)
    first = books.ask()
    until(lambda: held.calls == 1, "the first book's list call began")
    others = [books.ask({"status": "all"} if n % 2 else None) for n in range(11)]
    until(lambda: upstox_gateway.gtts.order_book.waiting == 11, "eleven books wait")
    held.release.set()
    assert all(shown(books.answer(n)) == [trigger_id] for n in [first, *others])
    assert len(fake_upstox.calls_to("gtt.details")) == 2  # twelve books, two list calls


def test_a_failed_shared_fetch_is_every_waiting_callers_error(upstox_client, upstox_key, upstox_gateway):
    place(upstox_client, upstox_key)
    held = HeldList(upstox_gateway.broker)
    held.fail_next = BrokerFailure("HTTP 500: Upstox is down", http_status=500, may_have_reached=False)
    books = Books(upstox_client.application, upstox_key)
    first = books.ask()
    until(lambda: held.calls == 1, "the first book's list call began")
    others = [books.ask() for _ in range(4)]
    until(lambda: upstox_gateway.gtts.order_book.waiting == 4, "four books wait")
    held.release.set()
    assert books.answer(first).status_code == 200
    for n in others:
        answer = books.answer(n)
        assert answer.status_code == 502
        assert "Upstox is down" in answer.get_json()["message"]
    assert held.calls == 2
    assert len(shown(upstox_client.post("/api/v1/gttorderbook", json={"apikey": upstox_key}))) == 1  # recovered


def test_the_body_and_audit_row_are_as_before(upstox_client, upstox_key, upstox_gateway):
    trigger_id = place(upstox_client, upstox_key)
    response = upstox_client.post("/api/v1/gttorderbook", json={"apikey": upstox_key})
    request_id = response.get_json()["request_id"]
    assert response.headers["X-Request-ID"] == request_id
    assert response.mimetype == "application/json"
    assert response.get_data(as_text=True) == dumps(
        {"status": "success", "data": list(upstox_gateway.gtts.book_view().entries), "request_id": request_id})
    with upstox_gateway.sessions() as session:
        row = session.scalar(select(AuditRecord).where(AuditRecord.request_id == request_id))
    assert row.response_body == {"status": "success", "entries": 1, "trigger_ids": [trigger_id]}
    assert [call["path"] for call in row.broker_calls] == ["/v3/order/gtt", "/v3/market-quote/ohlc"]
