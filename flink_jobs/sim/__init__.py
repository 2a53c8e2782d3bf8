"""Deterministic live-sports event simulator: game play-by-play plus user interactions.

Pure standard-library Python; see `generator` for the public API.
"""

from flink_jobs.sim import versions
from flink_jobs.sim.generator import Emission, SimConfig, SimSummary, Simulation
from flink_jobs.sim.schedule import GameInfo

__all__ = ["Emission", "GameInfo", "SimConfig", "SimSummary", "Simulation", "versions"]
