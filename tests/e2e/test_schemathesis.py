"""Schemathesis against the service's own Swagger document: the real server (run.py, waitress,
the sandbox broker), every /api/v1 operation, positive and negative generated requests.

Checked on every response: never a 5xx (`not_a_server_error`), and a body that conforms to the
documented schema when its status is documented (`response_schema_conformance`).

Two passes: bodies as generated (nearly always a 403: they carry no valid key), then the same
with a valid `apikey` injected into every body, so validation, the services and the sandbox
broker are exercised; half of those orders and ticks name a real instrument (NSE IDEA).

Reproducible (hypothesis `derandomize=True`, no example database) and bounded: about 260
requests for each distinct endpoint and fewer for its alias, under two minutes in all. A failure
lists every operation that failed, each with schemathesis' curl command to reproduce it.

The served document is converted with api/openapi.py's swagger2_document() first: until the
body models are registered through swagger2_schema(), pydantic's draft-2020 constructs make
schemathesis refuse place and modify (numeric exclusiveMinimum) and generate no body at all for
sandbox/ticks (`$ref: #/$defs/TickIn` does not resolve); the test warns while that is so.
"""
from __future__ import annotations

from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from openalgo_gtt.api.openapi import swagger2_document, swagger2_problems

# Generated examples per operation and generation mode (positive, negative).
KEYED, KEYLESS = 100, 30
ALIASES = {"/v1/placegttorder", "/v1/modifygttorder", "/v1/cancelgttorder"}  # same views: a lighter touch
ALIAS_SHARE = 4
# The paper account's books (issue 27) take only `apikey`: a light touch too.
BOOKS = {"/v1/orderbook", "/v1/tradebook", "/v1/positionbook", "/v1/funds"}
EXPECTED = {
    "/v1/ping", "/v1/placegtt", "/v1/modifygtt", "/v1/cancelgtt", "/v1/gttorderbook", "/v1/gttorderstatus",
    "/v1/sandbox/ticks", "/v1/cancelorder", *ALIASES, *BOOKS,
}
REAL_INSTRUMENT = {"symbol": "IDEA", "exchange": "NSE"}
# A life cycle: place before the book, status, modify and cancel, which then get real trigger ids.
ORDER = ["/v1/ping", "/v1/sandbox/ticks", "/v1/placegtt", "/v1/placegttorder", "/v1/gttorderbook",
         "/v1/gttorderstatus", "/v1/modifygtt", "/v1/modifygttorder", "/v1/cancelgtt", "/v1/cancelgttorder",
         "/v1/orderbook", "/v1/tradebook", "/v1/positionbook", "/v1/funds", "/v1/cancelorder"]


@pytest.fixture
def target(server_factory):
    server = server_factory(
        BROKER="sandbox", RATE_LIMIT_ENABLED="false", DAILY_TRADE_LIMIT="1000000", OCO_POLL_SECONDS="600",
    )
    key = server.cli("apikey", "create", "schemathesis").stdout.strip().splitlines()[-1]
    server.start()
    tick = {"apikey": key, "ticks": [{**REAL_INSTRUMENT, "ltp": "9.50", "open": "10.00"}]}
    assert requests.post(f"{server.url}/api/v1/sandbox/ticks", json=tick, timeout=10).status_code == 200
    document = requests.get(f"{server.url}/api/swagger.json", timeout=10).json()
    return server, key, document


def v1_operations(document: dict) -> list:
    assert swagger2_problems(document) == []  # the served document is valid Swagger 2.0
    schema = schemathesis.openapi.from_dict(swagger2_document(document))
    operations = [result.ok() for result in schema.get_all_operations()]  # .ok() raises on a broken one
    chosen = [op for op in operations if op.path.startswith("/v1/")]
    assert {op.path for op in chosen} == EXPECTED == set(ORDER)
    return sorted(chosen, key=lambda op: ORDER.index(op.path))


class Fuzz:
    """One pass over the operations; collects every failure rather than stopping at the first."""

    def __init__(self, server, key: str | None):
        self.server, self.key = server, key
        self.session = requests.Session()
        self.failures: list[str] = []
        self.seen: Counter = Counter()  # (path, status) -> responses
        self.placed: list[str] = []  # trigger ids of GTTs the pass placed

    def run(self, operations) -> Fuzz:
        for operation in operations:
            examples = KEYED if self.key else KEYLESS
            if operation.path in ALIASES | BOOKS:
                examples = max(1, examples // ALIAS_SHARE)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    self._test(operation, mode, examples)()
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - FailureGroup: report all
                    self.failures.append(f"POST /api{operation.path} ({mode.value}):\n{exc}")
        return self

    def _test(self, operation, mode: GenerationMode, examples: int):
        @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
        @settings(
            max_examples=examples, derandomize=True, database=None, deadline=None,
            suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate, Phase.shrink),
        )
        def test(case, real):
            if self.key is not None and isinstance(case.body, dict):
                self._with_key(case.body, real)
            response = case.call_and_validate(
                base_url=f"{self.server.url}/api", session=self.session,
                checks=[not_a_server_error, response_schema_conformance], timeout=15,
            )
            self.seen[(operation.path, response.status_code)] += 1
            if response.status_code == 200 and "placegtt" in operation.path:
                self.placed.append(response.json()["trigger_id"])

        return test

    def _with_key(self, body: dict, real: bool) -> None:
        body["apikey"] = self.key
        if not real:
            return
        if "symbol" in body:
            body.update(REAL_INSTRUMENT)
        ticks = body.get("ticks")
        if isinstance(ticks, list) and ticks and isinstance(ticks[0], dict):
            ticks[0].update(REAL_INSTRUMENT)
        if self.placed and "trigger_id" in body:
            body["trigger_id"] = self.placed[sum(self.seen.values()) % len(self.placed)]


def statuses(seen: Counter, path: str) -> set[int]:
    return {status for (where, status) in seen if where == path}


def test_generated_requests_without_a_valid_key_never_get_a_5xx(target):
    server, _, document = target
    run = Fuzz(server, key=None).run(v1_operations(document))
    failures, seen = run.failures, run.seen
    assert not failures, "\n\n".join(failures)
    assert all(status < 500 for _, status in seen)
    assert sum(seen.values()) >= len(EXPECTED) * 2 * (KEYLESS // ALIAS_SHARE)
    assert 403 in statuses(seen, "/v1/placegtt")


def test_generated_requests_with_a_valid_key_never_get_a_5xx(target):
    server, key, document = target
    run = Fuzz(server, key=key).run(v1_operations(document))
    failures, seen = run.failures, run.seen
    assert not failures, "\n\n".join(failures)
    # The key reached the endpoints: validation and the services answered, not the key check.
    for path in EXPECTED - ALIASES:
        assert statuses(seen, path) - {403}, (path, statuses(seen, path))
    assert 200 in statuses(seen, "/v1/ping") and 200 in statuses(seen, "/v1/gttorderbook")
    assert 400 in statuses(seen, "/v1/placegtt")
