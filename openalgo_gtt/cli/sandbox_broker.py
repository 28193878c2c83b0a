"""`python run.py sandbox replay`: ticks from a CSV file pushed into the sandbox broker."""
from __future__ import annotations

import sys

import click

from openalgo_gtt.cli.bootstrap import friendly_errors, prepare, settings_or_exit


@click.group()
def sandbox() -> None:
    """The sandbox broker (no Upstox account needed)."""


@sandbox.command("replay")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--speed", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Replay speed: 1 keeps the file's pace, 60 is a minute a second, 0 is as fast as possible.")
@friendly_errors
def sandbox_replay(csv_file: str, speed: float) -> None:
    """Replay ticks from CSV_FILE (timestamp,symbol,exchange,ltp) into the sandbox broker."""
    import time
    from pathlib import Path

    from tqdm import tqdm

    from openalgo_gtt.domain.errors import DomainError
    from openalgo_gtt.services.sandbox_feed import NotSandbox, push_ticks, read_replay_csv
    from openalgo_gtt.store.instruments import UnknownInstrument

    settings = settings_or_exit()
    gateway = prepare(settings)
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
