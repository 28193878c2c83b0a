"""`python run.py serve` (and `python run.py` alone): upgrade the database, reconcile with the
broker, then serve with waitress until Ctrl-C or SIGTERM."""
from __future__ import annotations

import signal
import sys

import click

from openalgo_gtt.cli.bootstrap import friendly_errors, prepare, settings_or_exit, shown_database, startup_log
from openalgo_gtt.config import CREATE, Settings
from openalgo_gtt.startup import check_pepper_or_exit


@click.command()
@friendly_errors
def serve() -> None:
    """Upgrade the database, then serve with waitress on HOST:PORT (cli/waitress_server.py)."""
    from openalgo_gtt.app import create_app
    from openalgo_gtt.cli import waitress_server

    settings = settings_or_exit(CREATE)
    gateway = prepare(settings, create=True)
    check_pepper_or_exit(gateway, server=True)
    app = create_app(gateway=gateway)
    # Listen before anything else starts or is said: a port another server holds is one line
    # and an exit, never "serving on ..." followed by a traceback.
    try:
        server = waitress_server.bind(app, settings)
    except waitress_server.ServerStartError as exc:
        gateway.close()
        in_use = isinstance(exc, waitress_server.PortInUse)
        click.echo(f"{'error' if in_use else 'configuration error'}: {exc}", err=True)
        sys.exit(1 if in_use else 2)
    _start_watcher(gateway)
    for line in startup_lines(settings):
        startup_log.info("%s", line)
    # SIGTERM (systemd, Docker, a supervisor) stops the server as Ctrl-C does: waitress ends its
    # loop on either and lets running requests finish (up to its own 5 s).
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        waitress_server.run(server)
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
                                              if settings.broker == "sandbox" else ""),
             *where_lines(settings)]
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


def where_lines(settings: Settings) -> list[str]:
    """Where this server keeps its state: the data folder every command finds (the default
    database, its pepper, .env), the database itself, and the .env files it read."""
    lines = [f"data folder: {settings.data_dir} (the default database, its api_key_pepper and .env; "
             "OPENALGO_GTT_HOME moves it)",
             f"database: {shown_database(settings)}"]
    if settings.dotenv_files:
        lines.append("settings read from: " + ", ".join(str(path) for path in settings.dotenv_files)
                     + " (and the environment, which wins)")
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
