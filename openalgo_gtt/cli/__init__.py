"""The command line behind run.py: serve, API keys, Upstox login, database, instrument master.

This module is the command dispatch (click); each command builds the gateway and calls a use
case. The terminal login flow (its prompt, the one-shot listener on the redirect port) is
cli/login.py.
"""
from __future__ import annotations

import sys
from functools import wraps

import click

from openalgo_gtt.config import ConfigError, Settings, load_settings
from openalgo_gtt.logging_setup import configure_logging
from openalgo_gtt.startup import check_pepper_or_exit


def _settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings.log_level)
    return settings


def _gateway(settings: Settings):
    from openalgo_gtt.gateway import Gateway

    return Gateway.build(settings)


def _upgrade(settings: Settings) -> None:
    from openalgo_gtt.store.migrate import upgrade

    upgrade(settings.database_url)


def _prepare(settings: Settings):
    """Upgrade the schema and make sure an instrument master is there (the bundled sample on a
    fresh machine, so it works offline); returns the gateway."""
    from openalgo_gtt.store.instruments import ensure_instruments

    _upgrade(settings)
    gateway = _gateway(settings)
    report = ensure_instruments(gateway.engine)
    if report is not None:
        click.echo(f"loaded the bundled sample instrument master ({report.rows_loaded} instruments); "
                   "load Upstox's full master with: python run.py instruments load")
    # Build the symbol index now, not in the first alert's request (seconds for a full master,
    # against TradingView's 3 second patience).
    click.echo(f"instrument index ready: {len(gateway.instruments)} instruments")
    return gateway


def _friendly_errors(command):
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


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """openalgo-gtt: OpenAlgo-compatible GTT orders on Upstox.

    With no command, upgrades the database and serves the API.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@cli.command()
@_friendly_errors
def serve() -> None:
    """Upgrade the database, then serve with waitress on HOST:PORT."""
    from waitress import serve as waitress_serve

    from openalgo_gtt.app import create_app

    settings = _settings_or_exit()
    gateway = _prepare(settings)
    check_pepper_or_exit(gateway, server=True)
    _start_watcher(gateway)
    app = create_app(gateway=gateway)
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"openalgo-gtt serving on {base}")
    click.echo(f"API docs: {base}/api/docs")
    click.echo(f"broker: {settings.broker}")
    click.echo("Upstox GTT webhook URL: python run.py webhook-url")
    waitress_serve(app, **serve_options(settings))


def serve_options(settings: Settings) -> dict:
    """waitress's settings. A connection limit well above waitress's default of 100, and a channel
    timeout: a connection that sends nothing for that long is closed, so clients trickling bytes
    cannot hold every connection (a reverse proxy with timeouts in front does the rest, README)."""
    return {"host": settings.host, "port": settings.port, "threads": settings.server_threads,
            "connection_limit": settings.server_connection_limit,
            "channel_timeout": settings.server_channel_timeout,
            # how often idle connections are looked for (waitress's default is every 30 s)
            "cleanup_interval": min(5, settings.server_channel_timeout), "ident": "openalgo-gtt"}


def _start_watcher(gateway) -> None:
    """Reconcile with the broker before serving, then keep watching in the background."""
    from openalgo_gtt.brokers.errors import BrokerError

    report = gateway.start_watching()
    if isinstance(report, BrokerError):
        click.echo(f"warning: could not reconcile with the broker at start ({report}); the watcher retries", err=True)
    elif report.pairs_settled or report.statuses_changed or report.places_recovered:
        click.echo(f"reconciled at start: {len(report.pairs_settled)} OCO pairs settled, "
                   f"{len(report.statuses_changed)} statuses updated, {report.places_recovered} lost places settled")


@cli.command("webhook-url")
@_friendly_errors
def webhook_url() -> None:
    """Print the URL to set as the Upstox app's postback URL (GTT updates)."""
    settings = _settings_or_exit()
    _upgrade(settings)
    gateway = _gateway(settings)
    check_pepper_or_exit(gateway, server=False, unproven_ok=True)  # the secret derives from the pepper
    click.echo(f"http://{settings.host}:{settings.port}/upstox/postback/{gateway.webhook_secret}")
    click.echo("(use your public https address in place of the host and port when behind ngrok or a domain)", err=True)


@cli.group()
def apikey() -> None:
    """Create, list and revoke API keys."""


@apikey.command("create")
@click.argument("name")
@_friendly_errors
def apikey_create(name: str) -> None:
    """Create a key; it is printed once, alone on the last line."""
    settings = _settings_or_exit()
    _upgrade(settings)
    gateway = _gateway(settings)
    check_pepper_or_exit(gateway, server=False)  # never print a key the server cannot verify
    key = gateway.api_keys.create(name)
    click.echo(f"API key {name!r} created. It is shown only this once; store it safely:")
    click.echo(key)


@apikey.command("list")
@_friendly_errors
def apikey_list() -> None:
    """Names, creation and last use (never the keys)."""
    from openalgo_gtt.domain.clock import ist_text

    settings = _settings_or_exit()
    _upgrade(settings)
    keys = _gateway(settings).api_keys.list()
    if not keys:
        click.echo("no API keys yet: python run.py apikey create NAME")
        return
    click.echo(f"{'NAME':<24} {'CREATED (IST)':<20} {'LAST USED (IST)':<20} STATE")
    for key in keys:
        state = f"revoked {ist_text(key.revoked_at)}" if key.revoked_at else "active"
        if key.legacy and not key.revoked_at:
            state += " (legacy format: replace it with a new key)"
        click.echo(f"{key.name:<24} {ist_text(key.created_at):<20} {ist_text(key.last_used_at) or '-':<20} {state}")


@apikey.command("revoke")
@click.argument("name")
@_friendly_errors
def apikey_revoke(name: str) -> None:
    """Revoke a key; it stops working at once."""
    settings = _settings_or_exit()
    _upgrade(settings)
    _gateway(settings).api_keys.revoke(name)
    click.echo(f"API key {name!r} revoked")


# The function is not called `login`: importing cli/login.py binds that name in this package to the module.
@cli.command("login")
@click.option("--app", "via_app", is_flag=True,
              help="Approve in the Upstox app instead of a browser; the running server's notifier receives the token.")
@click.option("--no-listen", is_flag=True, help="Do not listen on the redirect URI's port; paste the address instead.")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for the login.")
@click.option("--notifier-url", is_flag=True, help="Only print the notifier URL to set on the Upstox app.")
@_friendly_errors
def login_command(via_app: bool, no_listen: bool, timeout: int, notifier_url: bool) -> None:
    """Log in to Upstox for today's access token (it ends at 03:30 IST) and store it encrypted."""
    from openalgo_gtt.cli.login import run_login, stdin_prompt
    from openalgo_gtt.services.upstox_login import LoginError

    settings = _settings_or_exit()
    _upgrade(settings)
    gateway = _gateway(settings)
    check_pepper_or_exit(gateway, server=False, unproven_ok=True)  # the token is encrypted under the pepper
    if notifier_url:
        click.echo(f"http://{settings.host}:{settings.port}{gateway.upstox_login.notifier_path}")
        click.echo("(use your public https address in place of the host and port)", err=True)
        return
    try:
        run_login(gateway, echo=click.echo, prompt=stdin_prompt, via_app=via_app, listen=not no_listen,
                  timeout=timeout)
    except LoginError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@_friendly_errors
def db_upgrade() -> None:
    """Upgrade the database to the latest migration."""
    settings = _settings_or_exit()
    _upgrade(settings)
    click.echo("database is at the latest migration")


@cli.group()
def instruments() -> None:
    """Upstox's instrument master (symbols, lot sizes, ticks)."""


@instruments.command("load")
@click.argument("source", required=False)
@_friendly_errors
def instruments_load(source: str | None) -> None:
    """Load the master from PATH_OR_URL (JSON or gzip), default INSTRUMENTS_URL, replacing the old
    set atomically."""
    from openalgo_gtt.store.db import make_engine
    from openalgo_gtt.store.instruments.load import InstrumentLoadError, load_master

    settings = _settings_or_exit()
    _upgrade(settings)
    # The engine alone: a load needs none of the gateway's services (nor their imports).
    engine = make_engine(settings.database_url)
    try:
        report = load_master(engine, source or settings.instruments_url, progress=True)
    except InstrumentLoadError as exc:
        click.echo(f"error: {exc}; the previous instrument set is unchanged", err=True)
        sys.exit(1)
    finally:
        engine.dispose()
    click.echo(f"loaded {report.rows_loaded} instruments ({report.rows_skipped} rows skipped) "
               f"in {report.seconds:.1f}s from {report.source}")
    for segment, count in sorted(report.per_segment.items()):
        click.echo(f"  {segment:<10} {count}")


@cli.group()
def sandbox() -> None:
    """The sandbox broker (no Upstox account needed)."""


@sandbox.command("replay")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--speed", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Replay speed: 1 keeps the file's pace, 60 is a minute a second, 0 is as fast as possible.")
@_friendly_errors
def sandbox_replay(csv_file: str, speed: float) -> None:
    """Replay ticks from CSV_FILE (timestamp,symbol,exchange,ltp) into the sandbox broker."""
    import time
    from pathlib import Path

    from tqdm import tqdm

    from openalgo_gtt.domain.errors import DomainError
    from openalgo_gtt.services.sandbox_feed import NotSandbox, push_ticks, read_replay_csv
    from openalgo_gtt.store.instruments import UnknownInstrument

    settings = _settings_or_exit()
    gateway = _prepare(settings)
    try:
        ticks = list(read_replay_csv(Path(csv_file)))
        fired = 0
        previous = None
        for tick in tqdm(ticks, unit="tick", desc="replay", file=sys.stderr):
            if speed and previous is not None and tick.at and previous.at:
                time.sleep(max((tick.at - previous.at).total_seconds(), 0) / speed)
            fired += len(push_ticks(gateway, [tick]))
            previous = tick
    except (DomainError, UnknownInstrument, NotSandbox) as exc:
        click.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        sys.exit(1)
    click.echo(f"replayed {len(ticks)} ticks; {fired} rules fired")
