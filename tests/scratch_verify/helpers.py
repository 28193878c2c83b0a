from __future__ import annotations

import json
import time

import requests
from sqlalchemy import create_engine, select

from openalgo_gtt.store.models import AuditRecord, GttOrder
from tests.waiting import until

IDEA = "NSE_EQ|INE669E01016"
SINGLE = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "trigger_type": "SINGLE",
          "product": "CNC", "triggerprice_tg": 9.61}
OCO = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "trigger_type": "OCO",
       "product": "CNC", "triggerprice_sl": "9.00", "triggerprice_tg": "10.50"}
BRACKET = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "trigger_type": "BRACKET",
           "product": "MIS", "entry_mode": "manual", "entry_value": "9.80"}


class Gw:
    def __init__(self, server_factory, fake, database_url, **env):
        fake.set_price(IDEA, "IDEA", "NSE_EQ", "9.50", open="10.00")
        env.setdefault("DAILY_TRADE_LIMIT", "150")
        self.server = server_factory(ACCESS_TOKEN=fake.token, UPSTOX_API_URL=fake.url, **env)
        self.key = self.server.cli("apikey", "create", "scratch").stdout.strip().splitlines()[-1]
        self.server.start()
        self.url = self.server.url
        self.fake = fake
        self.database_url = database_url
        self.log: list[tuple[str, float, requests.Response]] = []
        self.t0 = time.monotonic()

    def post(self, route, body, *, text_plain=False, headers=None, with_key=True):
        payload = {"apikey": self.key, **body} if with_key else body
        hdrs = dict(headers or {})
        t = time.monotonic() - self.t0
        if text_plain:
            hdrs["Content-Type"] = "text/plain"
            r = requests.post(f"{self.url}/api/v1/{route}", data=json.dumps(payload), headers=hdrs, timeout=60)
        else:
            r = requests.post(f"{self.url}/api/v1/{route}", json=payload, headers=hdrs, timeout=60)
        self.log.append((route, t, r))
        assert r.status_code != 500, (route, r.text)
        assert "Traceback" not in r.text, (route, r.text)
        return r

    def health(self):
        return requests.get(f"{self.url}/api/health", timeout=5).json()

    def count(self):
        return self.health()["today_trade_count"]

    def live(self):
        return [g for g in self.fake.gtts() if any(r["status"] in ("SCHEDULED", "INACTIVE") for r in g["rules"])
                and any(r["status"] == "SCHEDULED" for r in g["rules"])]

    def audit_rows(self):
        engine = create_engine(self.database_url)
        with engine.connect() as conn:
            rows = conn.execute(select(AuditRecord.request_id, AuditRecord.endpoint, AuditRecord.http_status,
                                       AuditRecord.error)).all()
        engine.dispose()
        return rows

    def gtt_rows(self):
        engine = create_engine(self.database_url)
        with engine.connect() as conn:
            out = [tuple(r) for r in conn.execute(select(GttOrder.trigger_id)).all()]
        engine.dispose()
        return out

    def check_audit(self):
        time.sleep(0.5)
        rows = self.audit_rows()
        by_id = {}
        for rid, *_ in rows:
            by_id[rid] = by_id.get(rid, 0) + 1
        problems = []
        for route, t, r in self.log:
            rid = r.headers.get("X-Request-ID")
            if by_id.get(rid, 0) != 1:
                problems.append((route, round(t, 1), r.status_code, rid, by_id.get(rid, 0)))
        assert not problems, problems

    def summary(self):
        return [(route, round(t, 1), r.status_code, r.json().get("message") or r.json().get("trigger_id"),
                 r.json().get("duplicate")) for route, t, r in self.log]
