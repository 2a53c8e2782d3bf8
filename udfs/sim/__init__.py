"""Deterministic live-sports event simulator: game play-by-play plus user interactions.

Pure standard-library Python; see `generator` for the public API.
"""

from udfs.sim import versions
from udfs.sim.generator import Emission, SimConfig, SimSummary, Simulation
from udfs.sim.schedule import GameInfo

__all__ = ["Emission", "GameInfo", "SimConfig", "SimSummary", "Simulation", "versions"]
