"""Reading Upstox's instrument master and turning its rows into the records a load writes.

A source is a local file (JSON or gzip, told apart by its content), an http(s) URL (streamed to
a temporary file first: the master is tens of MB) or None, the bundled sample. With `progress`,
reading shows a tqdm bar of the bytes read or downloaded on stderr (only when stderr is a
terminal, so logs and captured output get no bar).
"""
from __future__ import annotations

import gzip
import os
import tempfile
from collections import Counter
from pathlib import Path

import orjson

from openalgo_gtt.domain.symbols import instrument_fields
from openalgo_gtt.store.tables import INSTRUMENTS

SAMPLE_SOURCE = "bundled:sample_instruments.json"
# Beside the code rather than importlib.resources: under an editable install imported from
# another working directory (gunicorn), the package's resource reader fails.
SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "sample_instruments.json"
DOWNLOAD_TIMEOUT = (10, 60)  # connect, read (seconds between bytes, not the whole download)
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

# A record is InstrumentInfo's fields in order, which are these columns.
COLUMNS = (
    "instrument_key", "segment", "exchange", "symbol", "trading_symbol", "name",
    "instrument_type", "lot_size", "tick_size", "expiry", "strike", "isin",
)
# PostgreSQL enforces VARCHAR lengths (SQLite does not): a row that would not fit is skipped
# rather than failing the whole load.
_LENGTHS = {c.name: c.type.length for c in INSTRUMENTS.columns if getattr(c.type, "length", None)}


class InstrumentLoadError(RuntimeError):
    """A load that did not complete; the previous instrument set is still in place."""


def _bar(progress: bool, total: int | None, desc: str):
    from tqdm import tqdm  # only the CLI shows progress

    # disable=None: no bar when stderr is not a terminal (logs, cron, captured test output).
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=None if progress else True)


class _CountingReader:
    """A binary file whose reads advance a progress bar (gzip reads through it)."""

    def __init__(self, raw, bar):
        self._raw = raw
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._bar.update(len(data))
        return data


def _read_bytes(path: Path, progress: bool) -> bytes:
    """The file's content, gunzipped when it is gzip (by its magic bytes, whatever its name)."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not progress:
            return gzip.GzipFile(fileobj=raw).read() if compressed else raw.read()
        with _bar(progress, os.fstat(raw.fileno()).st_size, "instrument master") as bar:
            reader = _CountingReader(raw, bar)
            if compressed:
                return gzip.GzipFile(fileobj=reader).read()
            return b"".join(iter(lambda: reader.read(_CHUNK), b""))


def _parse_file(path: Path, progress: bool = False) -> list:
    """A master file's rows."""
    try:
        rows = orjson.loads(_read_bytes(path, progress))
    except (OSError, EOFError) as exc:  # missing file, corrupt or truncated gzip
        raise InstrumentLoadError(f"cannot read instrument master {path}: {exc}") from exc
    except ValueError as exc:  # orjson.JSONDecodeError, invalid UTF-8 included
        raise InstrumentLoadError(f"instrument master {path} is not valid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise InstrumentLoadError(
            f"instrument master {path} is a JSON {type(rows).__name__}, expected an array of rows"
        )
    return rows


def _download(url: str, progress: bool, headers: dict[str, str] | None = None) -> Path:
    """Stream `url` to a temporary file and return its path."""
    import requests  # only a download needs it; a local load should not pay for importing it

    fd, name = tempfile.mkstemp(prefix="instruments-", suffix=".download")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT,
                                                             headers=headers) as resp:
            resp.raise_for_status()
            # With a Content-Encoding the header counts compressed bytes but we see decoded ones.
            length = resp.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() and "Content-Encoding" not in resp.headers else None
            with _bar(progress, total, "instrument master") as bar:
                for chunk in resp.iter_content(chunk_size=_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as exc:
        path.unlink(missing_ok=True)
        raise InstrumentLoadError(f"download of instrument master {url} failed: {exc}") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def read_source(source, progress: bool = False) -> tuple[list, str]:
    """(rows, label) for a path, an http(s) URL, or None (the bundled sample)."""
    if source is None:
        return _parse_file(SAMPLE_PATH), SAMPLE_SOURCE
    label = os.fspath(source)
    if label.lower().startswith(("http://", "https://")):
        path = _download(label, progress)
        try:
            return _parse_file(path), label  # the download had the bar
        finally:
            path.unlink(missing_ok=True)
    return _parse_file(Path(label), progress), label


def to_records(rows: list, fields_of=instrument_fields) -> tuple[list[tuple], int, Counter]:
    """Rows -> insertable tuples (InstrumentInfo's field order, which is COLUMNS), the number
    skipped, and counts per segment. Tuples rather than InstrumentInfo objects or dicts: this
    runs once per row of a 150k-row file.

    A key seen twice keeps its first row: the table's primary key would otherwise fail the load.
    `fields_of` turns one row into a record (Upstox's rows by default; kite_master.py passes Kite's).
    """
    records: list[tuple] = []
    seen: set[str] = set()
    per_segment: Counter = Counter()
    key_max, symbol_max, ts_max = _LENGTHS["instrument_key"], _LENGTHS["symbol"], _LENGTHS["trading_symbol"]
    type_max, isin_max, name_max = _LENGTHS["instrument_type"], _LENGTHS["isin"], _LENGTHS["name"]
    for row in rows:
        fields = fields_of(row)
        if fields is None:
            continue
        key, segment, _, symbol, trading_symbol, name, instrument_type, _, _, _, _, isin = fields
        if (key in seen or len(key) > key_max or len(symbol) > symbol_max or len(trading_symbol) > ts_max
                or (instrument_type is not None and len(instrument_type) > type_max)
                or (isin is not None and len(isin) > isin_max)):
            continue
        if name is not None and len(name) > name_max:  # descriptive only: shorten, keep the row
            fields = fields[:5] + (name[:name_max],) + fields[6:]
        seen.add(key)
        per_segment[segment] += 1
        records.append(fields)
    return records, len(rows) - len(records), per_segment
