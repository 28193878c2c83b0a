"""The command line behind run.py: serve, API keys, Upstox login, database, instrument master.

This module is the command dispatch (click); each command builds the gateway and calls a use
case. The terminal login flow (its prompt, the one-shot listener on the redirect port) is
cli/login.py.
"""
from __future__ import annotations

import gc
import logging
import signal
import sys
from functools import wraps

import click

from openalgo_gtt.config import ConfigError, Settings, load_settings
from openalgo_gtt.logging_setup import configure_logging
from openalgo_gtt.startup import check_pepper_or_exit

# Start-up lines go through logging, in its one format (time, level, name), whatever LOG_LEVEL
# says: someone starting the server must see where it listens.
startup_log = logging.getLogger("openalgo_gtt.serve")
startup_log.setLevel(logging.INFO)


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
    """Upgrade the database, then serve with waitress on HOST:PORT (cli/waitress_server.py)."""
    from openalgo_gtt.app import create_app
    from openalgo_gtt.cli import waitress_server

    settings = _settings_or_exit()
    gateway = _prepare(settings)
    check_pepper_or_exit(gateway, server=True)
    _start_watcher(gateway)
    app = create_app(gateway=gateway)
    for line in startup_lines(settings):
        startup_log.info("%s", line)
    # SIGTERM (systemd, Docker, a supervisor) stops the server as Ctrl-C does: waitress ends its
    # loop on either and lets running requests finish (up to its own 5 s).
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        waitress_server.run(app, settings)
    except waitress_server.ServerStartError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    finally:
        signal.signal(signal.SIGTERM, previous)
        # Hand the watcher's lease back at once, so the next process watches without waiting
        # for it to lapse; and stop the notification sender between deliveries.
        gateway.close()
        startup_log.info("openalgo-gtt stopped")


def _exit_on_signal(_signum, _frame) -> None:
    raise SystemExit(0)


def startup_lines(settings: Settings) -> list[str]:
    """What `serve` tells on start: where it listens, the docs, the broker, and how to get the
    Upstox webhook URL (not printed here: its path holds a secret, and logs travel)."""
    base = f"http://{settings.host}:{settings.port}"
    lines = [f"openalgo-gtt serving on {base} (in the foreground: use a second terminal for other commands)",
             f"API docs: {base}/api/docs",
             f"broker: {settings.broker}" + (" (orders are simulated; answers say \"mode\": \"analyze\")"
                                              if settings.broker == "sandbox" else "")]
    if settings.broker == "upstox":
        lines.append(f"Upstox GTT webhook: the URL is {base}/upstox/postback/<secret>; print it with "
                     "`python run.py webhook-url` and set it as the Upstox app's postback URL "
                     "(with your public https address in place of the host and port behind ngrok or a domain)")
    elif settings.broker == "kite":
        lines.append(f"Kite: log in daily at {base}/kite/login?apikey=<gateway key> or with `python run.py login` "
                     "(the token expires at 06:00 IST); the watcher polls Kite's GTT list")
    else:
        lines.append("Upstox GTT webhook: not used with the sandbox broker")
    return lines


def _start_watcher(gateway) -> None:
    """Reconcile with the broker before serving, then keep watching in the background."""
    from openalgo_gtt.brokers.errors import BrokerError

    report = gateway.start_watching()
    if isinstance(report, BrokerError):
        startup_log.warning("could not reconcile with the broker at start (%s); the watcher retries", report)
    elif report.pairs_settled or report.statuses_changed or report.places_recovered:
        startup_log.info("reconciled at start: %d OCO pairs settled, %d statuses updated, %d lost places settled",
                         len(report.pairs_settled), len(report.statuses_changed), report.places_recovered)


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
    """Log in to the configured broker for today's access token and store it encrypted (Upstox's
    ends at 03:30 IST, Kite's at 06:00 IST)."""
    from openalgo_gtt.cli.login import run_login, stdin_prompt
    from openalgo_gtt.services.upstox_login import LoginError

    settings = _settings_or_exit()
    _upgrade(settings)
    gateway = _gateway(settings)
    check_pepper_or_exit(gateway, server=False, unproven_ok=True)  # the token is encrypted under the pepper
    if settings.broker == "kite":
        if via_app or notifier_url:
            click.echo("error: --app and --notifier-url are Upstox's; Kite logs in through its login page", err=True)
            sys.exit(2)
        try:
            run_login(gateway, echo=click.echo, prompt=stdin_prompt, listen=not no_listen, timeout=timeout,
                      service=gateway.kite_login)
        except LoginError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        return
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
    """The broker's instrument master (symbols, lot sizes, ticks): Upstox's, or Kite's CSV."""


@instruments.command("load")
@click.argument("source", required=False)
@_friendly_errors
def instruments_load(source: str | None) -> None:
    """Load the master from PATH_OR_URL, replacing the old set atomically: Upstox's JSON (or gzip),
    default INSTRUMENTS_URL; with BROKER=kite, Kite's CSV, default KITE_API_URL/instruments."""
    from openalgo_gtt.store.engine import make_engine
    from openalgo_gtt.store.instruments.load import InstrumentLoadError, load_master

    settings = _settings_or_exit()
    _upgrade(settings)
    # The engine alone: a load needs none of the gateway's services (nor their imports).
    engine = make_engine(settings.database_url)
    # This process lives for one load, whose bulk is a few hundred thousand acyclic objects
    # (parsed rows, record tuples). The cycle collector would walk them pass after pass and find
    # nothing, then walk every imported module's objects again at exit: off, for this command.
    gc.freeze()
    gc.disable()
    try:
        if settings.broker == "kite":
            report = load_master(engine, source or f"{settings.kite_api_url}/instruments", progress=True,
                                 broker="kite")
        else:
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


# -- the audit trail ----------------------------------------------------------------------------

def parse_when(text: str, now=None):
    """--since/--until: "15m", "2h", "1d" ago; or a date or date-time, in IST unless it names a
    zone ("2026-12-02", "2026-12-02 09:15", "2026-12-02T03:45:00+00:00")."""
    from datetime import datetime, timedelta

    from openalgo_gtt.domain.clock import IST, utcnow

    value = text.strip()
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if len(value) > 1 and value[-1].lower() in units and value[:-1].isdigit():
        return (now or utcnow()) - timedelta(**{units[value[-1].lower()]: int(value[:-1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use 15m, 2h, 1d, or a date/time such as 2026-12-02 09:15 (IST)") from None
    return moment.replace(tzinfo=IST) if moment.tzinfo is None else moment


def audit_line(row, as_json: bool) -> str:
    """One audit row as a line: text for people, or one JSON object (bodies included, as stored:
    redacted)."""
    from openalgo_gtt.domain.clock import ist_text
    from openalgo_gtt.domain.encoding import dumps

    if as_json:
        return dumps({"id": row.id, "request_id": row.request_id, "created_at": row.created_at.isoformat(),
                      "method": row.method, "endpoint": row.endpoint, "client_addr": row.client_addr,
                      "key": row.api_key_name, "http_status": row.http_status, "latency_ms": row.latency_ms,
                      "error": row.error, "request": row.request_body, "response": row.response_body})
    answer = row.response_body if isinstance(row.response_body, dict) else {}
    said = row.error or answer.get("message") or answer.get("trigger_id") or answer.get("gtt_id") or ""
    return (f"{ist_text(row.created_at)}  {row.http_status}  {row.method:<4} {row.endpoint:<28} "
            f"key={row.api_key_name or '-':<14} {row.latency_ms:>8.1f}ms  {row.request_id}  {said}").rstrip()


def follow_audit(engine, filters: dict, last_id: int, emit, *, interval: float, sleep=None, polls=None) -> None:
    """Print rows newer than `last_id` as they arrive, oldest first, polling every `interval`
    seconds; `polls` bounds the loop (tests), None runs until interrupted."""
    import time

    from openalgo_gtt.store.audit_log import recent_audit

    sleep = sleep or time.sleep
    done = 0
    while polls is None or done < polls:
        sleep(interval)
        done += 1
        for row in reversed(recent_audit(engine, limit=1000, after_id=last_id, **filters)):
            emit(row)
            last_id = row.id


@cli.command("audit")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Rows to show.")
@click.option("--endpoint", help="One endpoint: a path (/api/v1/placegtt) or its last part (placegtt).")
@click.option("--status", help="HTTP status: 404, a class (4xx), ok (below 400) or error (400 and up).")
@click.option("--key", help="The API key's name (as in `apikey list`).")
@click.option("--since", help="From: 15m, 2h, 1d ago, or a date/time (IST unless a zone is given).")
@click.option("--until", help="Until: as --since.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, request and response included.")
@click.option("--follow", "-f", is_flag=True, help="Keep watching: print new rows as they arrive (Ctrl+C stops).")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between polls with --follow.")
@_friendly_errors
def audit(limit: int, endpoint: str | None, status: str | None, key: str | None, since: str | None,
          until: str | None, as_json: bool, follow: bool, interval: float) -> None:
    """The audit trail: recent requests, newest first (bodies are stored redacted: no keys or tokens)."""
    from openalgo_gtt.store.audit_log import recent_audit, status_range
    from openalgo_gtt.store.engine import make_engine

    if status:
        try:
            status_range(status)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--status") from None
    filters = {"endpoint": endpoint, "status": status, "key": key,
               "since": parse_when(since) if since else None, "until": parse_when(until) if until else None}
    settings = _settings_or_exit()
    _upgrade(settings)
    engine = make_engine(settings.database_url)
    try:
        rows = recent_audit(engine, limit=limit, **filters)
        for row in rows:
            click.echo(audit_line(row, as_json))
        if not rows and not as_json:
            click.echo("no audit rows match", err=True)
        if follow:
            click.echo("following the audit trail (Ctrl+C stops)...", err=True)
            try:
                follow_audit(engine, filters, max((row.id for row in rows), default=_last_audit_id(engine)),
                             lambda row: click.echo(audit_line(row, as_json)), interval=interval)
            except KeyboardInterrupt:
                pass
    finally:
        engine.dispose()


def _last_audit_id(engine) -> int:
    from openalgo_gtt.store.audit_log import recent_audit

    newest = recent_audit(engine, limit=1)
    return newest[0].id if newest else 0


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


@cli.group()
def notify() -> None:
    """Notifications (NOTIFY_URLS, through Apprise)."""


@notify.command("test")
def notify_test() -> None:
    """Send a test message to every NOTIFY_URLS URL; print, per URL (masked), whether it was delivered."""
    from openalgo_gtt.services.notifications import send_test

    settings = _settings_or_exit()
    if not settings.notify_urls:
        click.echo("NOTIFY_URLS is empty: notifications are off", err=True)
        sys.exit(1)
    failed = 0
    for label, outcome in send_test(settings.notify_urls, settings.notify_timeout):
        if outcome.delivered:
            click.echo(f"{label}  delivered")
        else:
            failed += 1
            click.echo(f"{label}  NOT delivered: {outcome.error}")
    sys.exit(1 if failed else 0)
