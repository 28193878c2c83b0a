"""A short exactly-once soak (tests/e2e/soak.py): three gunicorn workers on PostgreSQL and
Redis, a third of the places faulted (late, 500 after the work, hangs before and after it), and
TradingView's retries. It always runs on this machine's PostgreSQL (TEST_DATABASE_URL, or the
local server), once: .ci/run leaves it out of its second, PostgreSQL pass. Without a PostgreSQL
it is skipped, unless OPENALGO_GTT_REQUIRE_POSTGRES=1 (CI sets it): then it fails."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tests.e2e.soak import run_soak

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# One worker runs, in turn, the tests that count Upstox's order calls a second across processes
# sharing a Redis pacer: this one, test_gunicorn.py and tests/integration/test_shared_pacing.py.
# The soak's gunicorn workers and test_gunicorn.py's pace through one schedule in the test Redis
# (the pacer's key is the same for every server): at once, each would spend the other's slots (the
# gunicorn test's 40 places, due within their 5 s budget, would meet the pacer's 429). And each
# bursts from several processes at once: two such bursts on a 2-core machine starve each other's
# sends past the pacer's margin, which is then the machine, not the pacer, being measured.
pytestmark = pytest.mark.xdist_group("order-rate")


@pytest.fixture
def postgres_url():
    base_url = os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES)
    schema = f"soak_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(base_url, connect_args={"connect_timeout": 5})
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (SQLAlchemyError, ImportError) as exc:  # no server there, or no PostgreSQL driver
        why = f"no PostgreSQL at {make_url(base_url).render_as_string(hide_password=True)} ({type(exc).__name__})"
        if os.environ.get("OPENALGO_GTT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{why}, and OPENALGO_GTT_REQUIRE_POSTGRES=1: the soak must run")
        pytest.skip(f"{why}: the soak runs on PostgreSQL only (CI sets OPENALGO_GTT_REQUIRE_POSTGRES=1 "
                    "and never skips it)")
    yield f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_no_duplicate_no_unknown_gtt_and_an_exact_count_under_faults_and_retries(tmp_path, postgres_url, redis_url):
    url, _prefix, _client = redis_url
    report = run_soak(tmp_path, postgres_url, url, alerts=40, limit=30, fault_share=0.35)
    assert sum(report.faults.values()) >= 5, report  # the faults really happened
    assert report.duplicates == 0, report
    assert report.unknown_to_gateway == 0, report
    assert report.trade_count == report.gtts_at_broker, report
    assert report.gtts_at_broker <= report.limit, report
    assert report.most_order_calls_in_a_second <= 10, report
