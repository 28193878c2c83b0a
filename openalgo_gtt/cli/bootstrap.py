"""What the commands start with: the settings (or a one-line error and exit), the database
upgraded, the gateway built; and expected failures shown as one line, not a traceback."""
from __future__ import annotations

import logging
import sys
from functools import wraps

import click

from openalgo_gtt.config import EXISTING, ConfigError, NoDatabase, Settings, load_settings
from openalgo_gtt.logging_setup import configure_logging

# Start-up lines go through logging, in its one format (time, level, name), whatever LOG_LEVEL
# says: someone starting the server must see where it listens.
startup_log = logging.getLogger("openalgo_gtt.serve")
startup_log.setLevel(logging.INFO)


def settings_or_exit(store: str = EXISTING) -> Settings:
    """The settings, or one line and an exit. `store` (config: CREATE, EXISTING, NONE): only
    serving and `db upgrade` may create the database; any other command that finds none says
    where it looked and how to create it, and exits 1, never making a second, empty store."""
    try:
        settings = load_settings(store=store)
    except NoDatabase as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings.log_level)
    return settings


def build_gateway(settings: Settings):
    from openalgo_gtt.gateway import Gateway

    return Gateway.build(settings)


def upgrade_database(settings: Settings, *, create: bool = False) -> None:
    """Bring the database to the newest migration. Unless `create`, it must already hold the
    gateway's tables (a PostgreSQL database or schema that is empty is refused as a missing SQLite
    file is: one line, exit 1)."""
    from openalgo_gtt.store.migrate import schema_present, upgrade

    if not create and not schema_present(settings.database_url):
        click.echo(f"error: the database {shown_database(settings)} has no openalgo-gtt tables; nothing was done. "
                   "Start the server once (python run.py) or create them with: python run.py db upgrade", err=True)
        sys.exit(1)
    upgrade(settings.database_url)


def shown_database(settings: Settings) -> str:
    """The database as messages name it: a SQLite file's path, else the URL without its password."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def prepare(settings: Settings, *, create: bool = False):
    """Upgrade the schema (creating it only when `create`: serving) and make sure an instrument
    master is there (the bundled sample on a fresh machine, so it works offline); returns the
    gateway."""
    from openalgo_gtt.store.instruments import ensure_instruments

    upgrade_database(settings, create=create)
    gateway = build_gateway(settings)
    # Kite's symbols come from Kite's own CSV: the bundled sample is Upstox's, no use to it.
    report = ensure_instruments(gateway.engine) if settings.broker != "kite" else None
    if settings.broker == "kite" and len(gateway.instruments) == 0:
        startup_log.warning("no instruments loaded: load Kite's with: python run.py instruments load")
    if report is not None:
        startup_log.info("loaded the bundled sample instrument master (%d instruments); "
                         "load Upstox's full master with: python run.py instruments load", report.rows_loaded)
    # Build the symbol index now, not in the first alert's request (seconds for a full master,
    # against TradingView's 3 second patience).
    startup_log.info("instrument index ready: %d instruments", len(gateway.instruments))
    return gateway


def friendly_errors(command):
    """Expected failures (a database that is down, a bad name) are one line, not a traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            # Imported only now: a command that never touches API keys need not import them.
            from sqlalchemy.exc import OperationalError

            from openalgo_gtt.services.apikeys import ApiKeyError

            if isinstance(exc, ApiKeyError):
                click.echo(f"error: {exc}", err=True)
                sys.exit(1)
            if isinstance(exc, OperationalError):
                click.echo(f"error: the database is unreachable or not upgraded: {exc.orig}", err=True)
                sys.exit(1)
            raise

    return wrapper
