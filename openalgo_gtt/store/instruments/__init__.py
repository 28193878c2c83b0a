"""The instrument master: reading Upstox's file (master.py), loading it into `instruments` in one
transaction (load.py), and the in-memory index every request resolves (symbol, exchange) through
(index.py). The names the rest of the service uses are importable from here.
"""
from openalgo_gtt.store.instruments.index import InstrumentIndex, UnknownInstrument, current_generation
from openalgo_gtt.store.instruments.load import LoadReport, ensure_instruments, load_master
from openalgo_gtt.store.instruments.master import SAMPLE_SOURCE, InstrumentLoadError

__all__ = [
    "SAMPLE_SOURCE", "InstrumentIndex", "InstrumentLoadError", "LoadReport", "UnknownInstrument",
    "current_generation", "ensure_instruments", "load_master",
]
