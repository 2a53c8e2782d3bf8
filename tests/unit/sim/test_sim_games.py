"""Play-by-play invariants: structure, scores, corrections and league scoring rules."""

from __future__ import annotations

import re
from itertools import pairwise
from statistics import mean
from typing import Any

import pytest

from flink_jobs.sim.games import build_feed
from flink_jobs.sim.leagues import LEAGUES
from flink_jobs.sim.schedule import GameInfo, GamePlan

Record = dict[str, Any]
START_MS = 1_700_000_000_000

# league, original SCORE points, corrected points, plausible mean final score per team
LEAGUE_TABLE = [
    ("NBA", {1, 2, 3}, {0, 2, 3}, (95.0, 130.0)),
    ("NFL", {2, 3, 6, 7}, {0, 6, 7}, (17.0, 30.0)),
    ("NHL", {1}, {0}, (2.0, 4.0)),
    ("EPL", {1}, {0}, (0.9, 1.9)),
    ("MLS", {1}, {0}, (1.0, 2.1)),
]


def _league_feeds(league: str, games: int = 60) -> list[list[Record]]:
    spec = LEAGUES[league]
    feeds = []
    for i in range(games):
        info = GameInfo(
            game_id=f"{league.lower()}-aaa-bbb-{i:04d}",
            league=league,
            home_team_id=spec.team_id(spec.teams[0]),
            away_team_id=spec.team_id(spec.teams[1]),
            start_ms=START_MS,
            end_ms=START_MS + spec.real_duration_ms,
        )
        plan = GamePlan(index=i, info=info, plays=spec.realistic_plays, popularity=1.0)
        feeds.append(build_feed(plan, seed=21, correction_share=0.03))
    return feeds


@pytest.mark.parametrize(("league", "points", "corrected", "final_range"), LEAGUE_TABLE)
def test_league_scoring_values_and_realistic_finals(
    league: str, points: set[int], corrected: set[int], final_range: tuple[float, float]
) -> None:
    """Each league scores only its own point values and reaches realistic final scores."""
    feeds = _league_feeds(league)
    scores = [r for feed in feeds for r in feed if r["event_type"] == "SCORE"]
    assert {r["points"] for r in scores if r["revision"] == 0} <= points
    assert {r["points"] for r in scores if r["revision"] > 0} <= corrected
    finals = [s for feed in feeds for s in (feed[-1]["home_score"], feed[-1]["away_score"])]
    low, high = final_range
    assert low <= mean(finals) <= high


PERIOD_TABLE = [
    ("NBA", 4, 720),
    ("NFL", 4, 900),
    ("NHL", 3, 1200),
    ("EPL", 2, 2700),
    ("MLS", 2, 2700),
]


@pytest.mark.parametrize(("league", "periods", "clock"), PERIOD_TABLE)
def test_periods_and_countdown_clock(league: str, periods: int, clock: int) -> None:
    """Every period starts at a full clock, counts down, and ends at zero."""
    feed = _league_feeds(league, games=1)[0]
    assert [r["period"] for r in feed if r["event_type"] == "PERIOD_START"] == list(
        range(1, periods + 1)
    )
    assert feed[0]["period"] == 0
    by_period: dict[int, list[int]] = {}
    for r in feed[1:-1]:
        by_period.setdefault(r["period"], []).append(r["clock_seconds_remaining"])
    for clocks in by_period.values():
        assert clocks[0] == clock
        assert clocks[-1] == 0
        assert all(a >= b for a, b in pairwise(clocks))


def test_scores_equal_latest_scoring_plays(game_feeds: dict[str, list[Record]]) -> None:
    """After every event the score is the sum of SCORE points at each play's latest revision."""
    for feed in game_feeds.values():
        latest: dict[str, Record] = {}
        for r in feed:
            if r["event_type"] == "SCORE":
                prior = latest.get(r["event_id"])
                assert prior is None or prior["revision"] < r["revision"]
                latest[r["event_id"]] = r
            home = sum(s["points"] for s in latest.values() if s["team_id"] == r["home_team_id"])
            away = sum(s["points"] for s in latest.values() if s["team_id"] == r["away_team_id"])
            assert (r["home_score"], r["away_score"]) == (home, away)


def test_games_start_and_end_and_contain_their_events(
    game_feeds: dict[str, list[Record]],
) -> None:
    """GAME_START comes first, GAME_END last with the max sequence, all times between them."""
    for feed in game_feeds.values():
        assert feed[0]["event_type"] == "GAME_START"
        assert feed[-1]["event_type"] == "GAME_END"
        assert sum(r["event_type"] == "GAME_END" for r in feed) == 1
        start, end = feed[0]["event_time"], feed[-1]["event_time"]
        assert all(start <= r["event_time"] <= end for r in feed)


def test_sequences_run_from_one_without_gaps(game_feeds: dict[str, list[Record]]) -> None:
    """Sequence numbers are 1..n per game and event time never goes back along them."""
    for feed in game_feeds.values():
        assert [r["sequence"] for r in feed] == list(range(1, len(feed) + 1))
        times = [r["event_time"] for r in feed]
        assert times == sorted(times)


def test_corrections_follow_the_product_definition(game_feeds: dict[str, list[Record]]) -> None:
    """A correction repeats a SCORE's id and team with the next revision, sequence and state."""
    corrections = 0
    for feed in game_feeds.values():
        latest: dict[str, Record] = {}
        for prev, r in zip([None, *feed], feed, strict=False):
            if r["revision"] > 0:
                corrections += 1
                orig = latest[r["event_id"]]
                assert prev is not None
                assert r["event_type"] == orig["event_type"] == "SCORE"
                assert r["revision"] == orig["revision"] + 1
                assert r["team_id"] == orig["team_id"]
                assert r["points"] != orig["points"]
                assert r["event_time"] > orig["event_time"]
                assert (r["period"], r["clock_seconds_remaining"]) == (
                    prev["period"],
                    prev["clock_seconds_remaining"],
                )
                assert r["event_time"] >= prev["event_time"]
                between = feed[orig["sequence"] : r["sequence"] - 1]
                plays = [b for b in between if b["revision"] == 0 and b["team_id"] is not None]
                assert 1 <= len(plays) <= 5
            latest[r["event_id"]] = r
    assert corrections > 0


def test_record_field_rules(game_feeds: dict[str, list[Record]]) -> None:
    """Ids, teams, players and points follow the documented formats and validity rules."""
    game_levels = {"GAME_START", "PERIOD_START", "PERIOD_END", "GAME_END"}
    for game_id, feed in game_feeds.items():
        assert re.fullmatch(r"[a-z]{3}-[a-z]+-[a-z]+-\d{4}", game_id)
        for r in feed:
            if r["revision"] == 0:
                assert r["event_id"] == f"{game_id}-{r['sequence']}"
            if r["event_type"] != "SCORE":
                assert r["points"] == 0
            if r["event_type"] in game_levels:
                assert r["team_id"] is None and r["player_id"] is None
            else:
                assert r["team_id"] in (r["home_team_id"], r["away_team_id"])
                if r["player_id"] is not None:
                    assert re.fullmatch(rf"{r['team_id']}-p\d{{2}}", r["player_id"])
            assert min(r["points"], r["home_score"], r["away_score"], r["period"]) >= 0
            assert min(r["clock_seconds_remaining"], r["revision"]) >= 0
