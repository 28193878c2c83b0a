"""Reading Kite's instruments CSV (`GET /instruments`, about 100k rows, no login needed) and
turning its rows into the records a load writes, beside Upstox's master.py.

A source is a local file (plain or gzip, told apart by its content) or an http(s) URL (streamed
to a temporary file first, with the same progress bar). There is no bundled Kite sample: a Kite
gateway loads Kite's file (`python run.py instruments load`).
"""
from __future__ import annotations

import csv
import io
import os
from collections import Counter
from functools import partial
from pathlib import Path

from openalgo_gtt.domain.kite_symbols import kite_instrument_fields
from openalgo_gtt.store.instruments.master import InstrumentLoadError, _download, _read_bytes, to_records

KITE_COLUMNS = ("instrument_token", "exchange_token", "tradingsymbol", "name", "last_price", "expiry", "strike",
                "tick_size", "lot_size", "instrument_type", "segment", "exchange")


def _parse_csv(path: Path, progress: bool = False) -> list[dict]:
    try:
        text = _read_bytes(path, progress).decode("utf-8-sig")
    except (OSError, EOFError) as exc:
        raise InstrumentLoadError(f"cannot read Kite instruments {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InstrumentLoadError(f"Kite instruments {path} is not UTF-8 text: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("tradingsymbol", "exchange", "segment", "instrument_type") if c not in (reader.fieldnames or ())]
    if missing:
        raise InstrumentLoadError(f"Kite instruments {path} is not Kite's CSV: no column {', '.join(missing)} "
                                  f"(expected {', '.join(KITE_COLUMNS)})")
    return list(reader)


def read_kite_source(source, progress: bool = False) -> tuple[list[dict], str]:
    """(rows, label) for a path or an http(s) URL."""
    if source is None:
        raise InstrumentLoadError("no Kite instruments source: give a CSV path or KITE_API_URL/instruments")
    label = os.fspath(source)
    if label.lower().startswith(("http://", "https://")):
        path = _download(label, progress, headers={"X-Kite-Version": "3"})
        try:
            return _parse_csv(path), label
        finally:
            path.unlink(missing_ok=True)
    return _parse_csv(Path(label), progress), label


kite_records: "partial[tuple[list[tuple], int, Counter]]" = partial(to_records, fields_of=kite_instrument_fields)
