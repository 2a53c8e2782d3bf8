"""The schedule: ids, team use, and game spans inside the timeline."""

from __future__ import annotations

import pytest

from flink_jobs.sim import SimConfig, Simulation
from flink_jobs.sim.leagues import LEAGUES, all_teams

START_MS = 1_700_000_000_000


@pytest.mark.parametrize(
    ("duration_ms", "games"),
    [(600_000, 12), (86_400_000, 12), (3_600_000, 5), (600_000, 1)],
)
def test_games_lie_inside_the_timeline(duration_ms: int, games: int) -> None:
    """Each game spans min(real duration, 35-70% of the timeline) and fits inside it."""
    cfg = SimConfig(start_ms=START_MS, duration_ms=duration_ms, total_events=20_000, games=games)
    schedule = Simulation(cfg).schedule
    assert len(schedule) == games
    for game in schedule:
        span = game.end_ms - game.start_ms
        real = LEAGUES[game.league].real_duration_ms
        assert START_MS <= game.start_ms < game.end_ms <= START_MS + duration_ms
        assert span == real or 0.35 * duration_ms - 1 <= span <= 0.7 * duration_ms + 1
    starts = [g.start_ms for g in schedule]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)


def test_game_ids_are_unique_and_teams_play_once() -> None:
    """Game ids are unique and no team plays twice while leagues have free teams."""
    schedule = Simulation(SimConfig(start_ms=START_MS, total_events=20_000, games=20)).schedule
    assert len({g.game_id for g in schedule}) == len(schedule)
    teams = [t for g in schedule for t in (g.home_team_id, g.away_team_id)]
    assert len(set(teams)) == len(teams)
    for g in schedule:
        assert g.home_team_id.startswith(g.league.lower() + "-")
        assert g.away_team_id.startswith(g.league.lower() + "-")
        assert g.game_id.startswith(
            f"{g.home_team_id.split('-')[1]}-{g.away_team_id.split('-')[1]}-", 4
        )


def test_more_games_than_free_teams_reuses_teams() -> None:
    """A schedule larger than all rosters still builds, with distinct game ids."""
    pairs = len(all_teams()) // 2
    cfg = SimConfig(start_ms=START_MS, total_events=200_000, games=pairs + 10)
    schedule = Simulation(cfg).schedule
    assert len(schedule) == pairs + 10
    assert len({g.game_id for g in schedule}) == len(schedule)
    assert all(g.home_team_id != g.away_team_id for g in schedule)


@pytest.mark.parametrize(("league", "low", "high"), [(code, 10, 16) for code in LEAGUES])
def test_league_rosters(league: str, low: int, high: int) -> None:
    """Every league has 10-16 distinct lowercase team codes."""
    teams = LEAGUES[league].teams
    assert low <= len(teams) <= high
    assert len(set(teams)) == len(teams)
    assert all(code.isalpha() and code.islower() for code in teams)
