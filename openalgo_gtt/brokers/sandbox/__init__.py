"""The sandbox broker: simulated Upstox GTTs driven by pushed ticks, kept by a `SandboxStorage`.

    broker = SandboxBroker(SandboxRepository(sessions))    # the store's repository (store/sandbox.py)
    broker.apply_ticks([Tick("NSE_EQ|INE669E01016", Decimal("9.50"))])
    gtt_id = broker.place_gtt(request)          # NoPriceYet until the instrument has a tick

Modules: `model` (GTTs in memory, request checks), `index` (the price ladders), `engine` (the
trigger rules: fire, arm, trail, expire), `quotes`, `storage` (the protocol it is kept by) and
`broker` (the `Broker` and `TickSink` protocols over all of them). Nothing here imports the store.
"""
from openalgo_gtt.brokers.base import FiredEvent, Tick
from openalgo_gtt.brokers.sandbox.broker import NoPriceYet, SandboxBroker
from openalgo_gtt.brokers.sandbox.engine import TriggerEngine
from openalgo_gtt.brokers.sandbox.storage import Fill, SandboxStorage

__all__ = ["SandboxBroker", "Tick", "NoPriceYet", "FiredEvent", "Fill", "TriggerEngine", "SandboxStorage"]
