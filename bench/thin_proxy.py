"""The floor of "one Python HTTP hop": the thinnest proxy that could front the fake Upstox.

A bare WSGI app under waitress (the production server, with the gateway's thread count) that
reads the request body, sends the matching Upstox place with a pooled requests.Session (the
gateway's own client) and answers the broker's JSON. No Flask, no validation, no API key, no
store, no pacing, no audit. bench_place_overhead.py times it beside the gateway and the direct
call, so what the gateway adds on top of the hop itself can be read off one run.

    python bench/thin_proxy.py PORT UPSTOX_URL TOKEN THREADS
"""
from __future__ import annotations

import json
import sys

import requests
import waitress


def make_app(upstox_url: str, token: str):
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
               "Content-Type": "application/json"}
    place_url = f"{upstox_url}/v3/order/gtt/place"

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        price = float(body.get("triggerprice_tg", 0))
        upstox = {"type": "SINGLE", "quantity": int(body.get("quantity", 1)), "product": "D",
                  "instrument_token": "NSE_EQ|INE669E01016", "transaction_type": body.get("action", "BUY"),
                  "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": price}]}
        answer = session.post(place_url, data=json.dumps(upstox), headers=headers, timeout=10)
        out = answer.content
        start_response(f"{answer.status_code} OK", [("Content-Type", "application/json"),
                                                    ("Content-Length", str(len(out)))])
        return [out]

    return app


if __name__ == "__main__":
    port, upstox_url, token, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    waitress.serve(make_app(upstox_url, token), host="127.0.0.1", port=int(port), threads=threads, _quiet=True)
