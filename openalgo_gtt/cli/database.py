"""`python run.py db upgrade` and `python run.py instruments load`: the database's schema, and
the broker's instrument master loaded into it."""
from __future__ import annotations

import gc
import sys

import click

from openalgo_gtt.cli.bootstrap import friendly_errors, settings_or_exit, shown_database, upgrade_database
from openalgo_gtt.config import CREATE


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Upgrade the database to the latest migration."""
    settings = settings_or_exit(CREATE)
    upgrade_database(settings, create=True)
    click.echo(f"database is at the latest migration: {shown_database(settings)}")


@click.group()
def instruments() -> None:
    """The broker's instrument master (symbols, lot sizes, ticks): Upstox's, or Kite's CSV."""


@instruments.command("load")
@click.argument("source", required=False)
@click.option("--kite", "kite_csv", is_flag=True,
              help="On the sandbox: read SOURCE as Kite's instruments CSV (the sandbox takes either master).")
@friendly_errors
def instruments_load(source: str | None, kite_csv: bool) -> None:
    """Load the master from PATH_OR_URL, replacing the old set atomically: Upstox's JSON (or gzip),
    default INSTRUMENTS_URL; with BROKER=kite, Kite's CSV, default KITE_API_URL/instruments. The
    sandbox takes Upstox's by default and Kite's CSV with --kite."""
    from openalgo_gtt.store.engine import make_engine
    from openalgo_gtt.store.instruments.load import InstrumentLoadError, load_master

    settings = settings_or_exit()
    upgrade_database(settings)
    # The engine alone: a load needs none of the gateway's services (nor their imports).
    engine = make_engine(settings.database_url)
    # This process lives for one load, whose bulk is a few hundred thousand acyclic objects
    # (parsed rows, record tuples). The cycle collector would walk them pass after pass and find
    # nothing, then walk every imported module's objects again at exit: off, for this command.
    gc.freeze()
    gc.disable()
    try:
        if kite_csv and settings.broker == "upstox":
            click.echo("error: --kite is for BROKER=sandbox (BROKER=kite reads Kite's CSV anyway); Upstox needs "
                       "its own master", err=True)
            sys.exit(2)
        if settings.broker == "kite" or kite_csv:
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
