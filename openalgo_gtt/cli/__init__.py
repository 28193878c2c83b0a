"""The command line behind run.py: serve, API keys, Upstox login, database, instrument master.

This module is the command dispatch (click): the group and the commands it holds. Each command
lives with its kin and builds the gateway to call a use case:
    bootstrap.py       what every command starts with (settings, upgrade, gateway, one-line errors)
    server.py          serve (also `python run.py` alone)
    api_keys.py        apikey create, list, revoke
    broker_setup.py    login, webhook-url
    database.py        db upgrade, instruments load
    audit_trail.py     audit
    sandbox_broker.py  sandbox replay
    notifications.py   notify test
The terminal login flow (its prompt, the one-shot listener on the redirect port) is cli/login.py.
"""
from __future__ import annotations

import click

from openalgo_gtt.cli.api_keys import apikey
from openalgo_gtt.cli.audit_trail import audit
from openalgo_gtt.cli.broker_setup import login_command, webhook_url
from openalgo_gtt.cli.database import db, instruments
from openalgo_gtt.cli.notifications import notify
from openalgo_gtt.cli.sandbox_broker import sandbox
from openalgo_gtt.cli.server import serve


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """openalgo-gtt: OpenAlgo-compatible GTT orders on Upstox.

    With no command, upgrades the database and serves the API. The database, its pepper and
    .env live in the data folder, the same from any directory (serve prints where it is;
    OPENALGO_GTT_HOME moves it, DATABASE_URL names another database). Only serve and db upgrade
    create the database.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


for _command in (serve, webhook_url, apikey, login_command, db, instruments, audit, sandbox, notify):
    cli.add_command(_command)
