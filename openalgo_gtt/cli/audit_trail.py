"""`python run.py audit`: the audit trail, newest first, filtered, as text or JSON lines, and
followed live with --follow."""
from __future__ import annotations

import click

from openalgo_gtt.cli.bootstrap import friendly_errors, settings_or_exit, upgrade_database


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


@click.command("audit")
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
@friendly_errors
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
    settings = settings_or_exit()
    upgrade_database(settings)
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
