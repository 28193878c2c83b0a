"""The audit budget (issue 25, item 3): rows one by one up to a budget per address and in total
a minute, the rest counted into one summary row per address (and one shared past SUMMARIES)."""
from __future__ import annotations

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.services.audit_budget import AuditBudget


class Clock:
    def __init__(self):
        self.now = 1000.0 * 60

    def __call__(self):
        return self.now


def entry(address: str, status: int = 404, path: str = "/api/v1/x") -> AuditEntry:
    return AuditEntry(request_id="r", created_at=utcnow(), method="POST", endpoint=path, client_addr=address,
                      api_key_name=None, request_body=None, response_body=None, http_status=status, latency_ms=0.0)


def test_past_the_per_address_budget_requests_are_counted_into_one_summary_when_the_minute_ends():
    clock = Clock()
    budget = AuditBudget(per_address=3, total=100, summaries=10, clock=clock)
    admitted = [budget.admit("198.51.100.1") for _ in range(10)]
    assert admitted == [True] * 3 + [False] * 7
    for status in [404] * 5 + [429] * 2:
        budget.hold(entry("198.51.100.1", status))
    assert budget.admit("198.51.100.2")  # another address has a budget of its own
    assert budget.due() == []  # the minute has not ended
    clock.now += 60
    (summary,) = budget.due()
    assert summary.client_addr == "198.51.100.1" and summary.endpoint == "(summary)"
    assert summary.request_body["summary"]["requests"] == 7
    assert summary.request_body["summary"]["statuses"] == {"404": 5, "429": 2}
    assert summary.http_status == 404 and "7 more requests without a valid key from 198.51.100.1" in summary.error
    assert budget.admit("198.51.100.1")  # a new minute, a new budget
    assert budget.pending() == 0


def test_the_total_budget_and_the_number_of_summaries_are_bounded_whatever_the_number_of_addresses():
    clock = Clock()
    budget = AuditBudget(per_address=2, total=5, summaries=3, clock=clock)
    written = 0
    for i in range(1000):
        address = f"2001:db8::{i:x}"
        if budget.admit(address):
            written += 1
        else:
            budget.hold(entry(address))
    assert written == 5
    rows = budget.due(everything=True)
    assert len(rows) == 4  # three addresses of their own, one row for the rest
    assert sum(r.request_body["summary"]["requests"] for r in rows) == 995
    assert rows[-1].client_addr is None and "992 other addresses" in rows[-1].error
