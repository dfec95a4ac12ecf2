"""Simulated providers on loopback, speaking the real protocols (demo, e2e tests, benchmarks)."""

from bot.sim.relay import ALL, Behaviour, SimRelay
from bot.sim.server import LoopbackServer
from bot.sim.statuspage import SimStatusPage

__all__ = ["ALL", "Behaviour", "LoopbackServer", "SimRelay", "SimStatusPage"]
