"""Determinism, exact counts and configuration limits of the simulator."""

from __future__ import annotations

from typing import Any

import pytest

from flink_jobs.sim import Emission, SimConfig, Simulation

START_MS = 1_700_000_000_000


def _fingerprint(emissions: list[Emission]) -> list[tuple[Any, ...]]:
    return [(e.emit_ms, e.kind, e.key, e.record, e.late, e.duplicate) for e in emissions]


@pytest.mark.parametrize(
    "cfg",
    [
        SimConfig(seed=1, start_ms=START_MS, total_events=3_000),
        SimConfig(seed=99, start_ms=START_MS, total_events=5_000, games=3, users=100),
    ],
)
def test_same_config_gives_identical_emissions(cfg: SimConfig) -> None:
    """Two simulations built from equal configs emit exactly the same sequence."""
    assert _fingerprint(list(Simulation(cfg))) == _fingerprint(list(Simulation(cfg)))


def test_iterating_twice_repeats_the_run() -> None:
    """Re-iterating one Simulation replays the same emissions and the same summary."""
    sim = Simulation(SimConfig(seed=3, start_ms=START_MS, total_events=2_000))
    first = _fingerprint(list(sim))
    summary = sim.summary
    assert _fingerprint(list(sim)) == first
    assert sim.summary == summary


def test_different_seed_gives_different_emissions() -> None:
    """Changing only the seed changes the emitted records."""
    a = Simulation(SimConfig(seed=1, start_ms=START_MS, total_events=2_000))
    b = Simulation(SimConfig(seed=2, start_ms=START_MS, total_events=2_000))
    assert _fingerprint(list(a)) != _fingerprint(list(b))


@pytest.mark.parametrize(
    ("total", "games"),
    [(50, 12), (300, 12), (1_000, 12), (12_345, 12), (8_000, 1), (30_000, 40)],
)
def test_exact_number_of_original_events(total: int, games: int) -> None:
    """Game events plus interactions equal total_events; duplicates come on top."""
    sim = Simulation(SimConfig(seed=5, start_ms=START_MS, total_events=total, games=games))
    emissions = list(sim)
    originals = [e for e in emissions if not e.duplicate]
    assert len(originals) == total
    assert sim.summary.game_events + sim.summary.interactions == total
    assert sim.summary.duplicates == len(emissions) - total
    assert sim.summary.game_events == sum(e.kind == "game" for e in originals)


def test_small_total_still_plays_a_complete_game() -> None:
    """With 50 events the schedule shrinks to one full game plus interactions."""
    sim = Simulation(SimConfig(seed=11, start_ms=START_MS, total_events=50))
    records = [e.record for e in sim if e.kind == "game" and not e.duplicate]
    assert sim.summary.games == len(sim.schedule) == 1
    types = [r["event_type"] for r in sorted(records, key=lambda r: r["sequence"])]
    assert types[0] == "GAME_START"
    assert types[-1] == "GAME_END"
    assert sim.summary.interactions > 0


def test_summary_counts_match_the_stream(base_sim: Simulation, emissions: list[Emission]) -> None:
    """The summary's counters agree with the flags and records actually emitted."""
    summary = base_sim.summary
    originals = [e for e in emissions if not e.duplicate]
    users = {e.key for e in originals if e.kind == "interaction"}
    assert summary.late == sum(e.late for e in originals)
    assert summary.duplicates == sum(e.duplicate for e in emissions)
    assert summary.corrections == sum(
        e.kind == "game" and e.record["revision"] > 0 for e in originals
    )
    assert summary.users == len(users)
    assert summary.games == len(base_sim.schedule)
    assert sum(summary.leagues.values()) == summary.games


def test_game_events_are_about_fifteen_percent() -> None:
    """Games take roughly 15% of the events when the budget is within realistic play counts."""
    sim = Simulation(SimConfig(seed=8, start_ms=START_MS, total_events=10_000))
    list(sim)
    assert 0.10 <= sim.summary.game_events / 10_000 <= 0.20


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_events": 0},
        {"games": 0},
        {"users": 0},
        {"start_ms": -1},
        {"duration_ms": 1_000},
        {"out_of_order_ms": -5},
        {"late_share": 1.5},
        {"duplicate_share": -0.1},
        {"correction_share": 2.0},
        {"late_delay_ms": (10, 5)},
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, Any]) -> None:
    """Out-of-range settings fail at construction instead of producing odd streams."""
    with pytest.raises(ValueError):
        SimConfig(**kwargs)


def test_total_too_small_for_one_game_is_rejected() -> None:
    """A total below the smallest possible game raises rather than breaking the exact count."""
    with pytest.raises(ValueError, match="total_events"):
        Simulation(SimConfig(start_ms=START_MS, total_events=10))
