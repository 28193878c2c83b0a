"""The WSGI application for gunicorn (Linux), one gateway per worker process:

    python run.py db upgrade      # once, before the workers start (gunicorn.conf.py does it)
    gunicorn -c gunicorn.conf.py "openalgo_gtt.wsgi:app"

Each worker reconciles open OCO pairs and lost places at start and runs the watcher thread;
the database lease lets exactly one of them poll Upstox. gunicorn.conf.py's worker_exit closes a
stopping worker's gateway, so a lease it held is handed back at once.
"""
from __future__ import annotations

from openalgo_gtt.app import create_app
from openalgo_gtt.config import load_settings
from openalgo_gtt.gateway import Gateway
from openalgo_gtt.logging_setup import configure_logging
from openalgo_gtt.startup import check_pepper_or_exit


def build_gateway() -> Gateway:
    settings = load_settings()
    configure_logging(settings.log_level)
    built = Gateway.build(settings)
    check_pepper_or_exit(built, server=True)  # a worker with another pepper must not serve
    len(built.instruments)  # build the symbol index before the first request
    built.start_watching()
    return built


gateway = build_gateway()
app = create_app(gateway=gateway)
