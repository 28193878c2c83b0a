"""The exactly-once soak at full size: 300 TradingView alerts against three gunicorn workers on
PostgreSQL and Redis, a third of the places faulted, a daily limit of 150. Prints the numbers of
the reliability table of docs/reliability.md (see tests/e2e/soak.py for what is sent and what is compared).

    python bench/soak_exactly_once.py [--alerts 300] [--limit 150] [--faults 0.35]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379/0]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.e2e.soak import run_soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--faults", type=float, default=0.35)
    parser.add_argument("--spread", type=float, default=45.0, help="seconds over which the alerts arrive")
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    schema = f"soak_{uuid.uuid4().hex[:12]}"
    admin = create_engine(args.database)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        with tempfile.TemporaryDirectory() as workdir:
            url = f"{args.database}{'&' if '?' in args.database else '?'}options=-csearch_path%3D{schema}"
            report = run_soak(Path(workdir), url, args.redis, alerts=args.alerts, limit=args.limit,
                              fault_share=args.faults, spread=args.spread)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(f"alerts {report.alerts}, daily limit {report.limit}, {report.seconds:.0f} s")
    print("faults injected:", dict(report.faults))
    print("final answers per alert:", dict(report.answers))
    print(f"live GTTs at the broker {report.gtts_at_broker} (cancelled {report.cancelled_at_broker}); "
          f"trade count {report.trade_count}")
    print(f"duplicates {report.duplicates}; GTTs unknown to the gateway {report.unknown_to_gateway}; "
          f"most order calls in one second {report.most_order_calls_in_a_second}")
    print("holds" if report.holds else "BROKEN")
    return 0 if report.holds else 1


if __name__ == "__main__":
    sys.exit(main())
