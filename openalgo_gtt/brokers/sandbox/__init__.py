"""The sandbox broker: simulated Upstox GTTs driven by pushed ticks, kept in the database.

    broker = SandboxBroker(sessions)
    broker.apply_ticks([Tick("NSE_EQ|INE669E01016", Decimal("9.50"))])
    gtt_id = broker.place_gtt(request)          # NoPriceYet until the instrument has a tick
"""
from openalgo_gtt.brokers.base import FiredEvent, Tick
from openalgo_gtt.brokers.sandbox.broker import NoPriceYet, SandboxBroker
from openalgo_gtt.brokers.sandbox.engine import TriggerEngine
from openalgo_gtt.brokers.sandbox.persistence import Fill

__all__ = ["SandboxBroker", "Tick", "NoPriceYet", "FiredEvent", "Fill", "TriggerEngine"]
