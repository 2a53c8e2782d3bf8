"""Shared simulator runs: generated once per session so the whole folder stays fast."""

from __future__ import annotations

from typing import Any

import pytest

from flink_jobs.sim import Emission, SimConfig, Simulation

START_MS = 1_700_000_000_000

Record = dict[str, Any]


@pytest.fixture(scope="session")
def base_cfg() -> SimConfig:
    # Raised disorder and correction shares make every rule exercised many times.
    return SimConfig(
        seed=7,
        start_ms=START_MS,
        total_events=20_000,
        late_share=0.01,
        duplicate_share=0.02,
        correction_share=0.2,
    )


@pytest.fixture(scope="session")
def base_sim(base_cfg: SimConfig) -> Simulation:
    return Simulation(base_cfg)


@pytest.fixture(scope="session")
def emissions(base_sim: Simulation) -> list[Emission]:
    return list(base_sim)


@pytest.fixture(scope="session")
def originals(emissions: list[Emission]) -> list[Emission]:
    return [e for e in emissions if not e.duplicate]


@pytest.fixture(scope="session")
def game_feeds(originals: list[Emission]) -> dict[str, list[Record]]:
    feeds: dict[str, list[Record]] = {}
    for e in originals:
        if e.kind == "game":
            feeds.setdefault(e.key, []).append(e.record)
    for feed in feeds.values():
        feed.sort(key=lambda r: r["sequence"])
    return feeds


@pytest.fixture(scope="session")
def interactions(originals: list[Emission]) -> list[Record]:
    return sorted(
        (e.record for e in originals if e.kind == "interaction"),
        key=lambda r: r["event_time"],
    )
