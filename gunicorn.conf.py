"""gunicorn settings for openalgo-gtt on Linux: `gunicorn -c gunicorn.conf.py "openalgo_gtt.wsgi:app"`.

Chosen on a 2-core machine (see docs/benchmarks.md): one worker with 8 threads by default,
since a request spends most of its time waiting for Upstox. Use PostgreSQL (DATABASE_URL) and
Redis (RATE_LIMIT_STORAGE_URI) so every worker shares the trade limit, the idempotency records,
the watcher lease, the caller rate limits and the order pacer.
"""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))  # see docs/benchmarks.md: on 2 cores a second worker lost to Redis round trips
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
# A place can wait on the order pacer and on Upstox: never kill a worker in the middle of one.
timeout = 60
graceful_timeout = 30
# gunicorn believes no X-Forwarded-Proto of its own (its default trusts 127.0.0.1): TRUSTED_PROXIES
# decides, in the application (werkzeug's ProxyFix), exactly as under `python run.py`.
forwarded_allow_ips = ""


def on_starting(server):
    """Once, in the master, before any worker: the schema and the instrument master."""
    from openalgo_gtt.config import load_settings
    from openalgo_gtt.store.instruments import ensure_instruments
    from openalgo_gtt.store.migrate import upgrade
    from openalgo_gtt.store.engine import make_engine

    settings = load_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    ensure_instruments(engine)
    engine.dispose()


def worker_exit(server, worker):
    """In each worker as it stops, once its requests have finished: close its gateway (the
    notification sender, the watcher), so a watcher lease it held is handed back at once and
    another worker, or the next start, watches without waiting for the lease to lapse."""
    import sys

    wsgi = sys.modules.get("openalgo_gtt.wsgi")
    if wsgi is not None:  # None when the worker failed before loading the app
        wsgi.gateway.close()
