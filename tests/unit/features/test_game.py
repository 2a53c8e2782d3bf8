"""Per-game feature state machine (udfs/features/game.py), driven without Flink."""

from __future__ import annotations

import pytest

from tests.unit.features.builders import T0, ge, ui
from udfs.features import driver
from udfs.features.common import DAY, HOUR, MINUTE
from udfs.features.excitement import excitement
from udfs.features.game import lead_changes_and_ties


def at(out, t):
    return next(v for _, ft, v in out if ft == T0 + t)


def run(events, **kw):
    return driver.run("game", events, **kw)


def test_correction_changes_points_score_and_lead_history() -> None:
    """A correction replaces the play's points everywhere: score, 5-min points, lead changes."""
    events = [
        ge(100, 1, "GAME_START", team=None),
        ge(1100, 2, "SCORE", team="h", points=2, home=2),
        ge(2100, 3, "SCORE", team="a", points=3, home=2, away=3),
        ge(3100, 4, "SCORE", team="h", points=3, home=3, away=3, rev=1, eid="g1-2"),
    ]
    out = run(events).outputs
    before, after = at(out, 3000), at(out, 4000)
    assert (before["home_score"], before["away_score"], before["home_points_5m"]) == (2, 3, 2)
    assert (before["lead_changes"], before["ties"]) == (1, 0)
    assert (after["home_score"], after["away_score"], after["home_points_5m"]) == (3, 3, 3)
    assert (after["lead_changes"], after["ties"]) == (0, 1)
    assert after["scoring_plays_5m"] == 2
    # the corrected play keeps its original time: it leaves the 5-min window 5 min after 1100
    assert at(out, 5 * MINUTE + 2000)["home_points_5m"] == 0
    assert at(out, 5 * MINUTE + 2000)["away_points_5m"] == 3


def test_disallowed_goal_counts_no_scoring_play() -> None:
    """A correction to 0 points removes the play from scoring_plays_5m and the points."""
    events = [
        ge(100, 1, "SCORE", team="h", points=1, home=1, league="EPL"),
        ge(1100, 2, "SCORE", team="h", points=0, home=0, rev=1, eid="g1-1", league="EPL"),
    ]
    after = at(run(events).outputs, 2000)
    assert (after["scoring_plays_5m"], after["home_points_5m"], after["home_score"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([(0, 0), (2, 0), (2, 2), (2, 3), (5, 3)], (2, 1)),
        ([(0, 0), (1, 0), (2, 0)], (0, 0)),
        ([(0, 1), (1, 1), (1, 2), (2, 2)], (0, 2)),
        ([(3, 0), (3, 4)], (1, 0)),
    ],
    ids=["back-and-forth", "one-sided", "level-twice-same-leader", "first-leader-no-change"],
)
def test_lead_changes_and_ties(scores: list[tuple[int, int]], expected: tuple[int, int]) -> None:
    """Lead changes count switches of the non-zero leader; ties count becoming level."""
    events = [ge(100 + i, i + 1, home=h, away=a) for i, (h, a) in enumerate(scores)]
    res = run(events).outputs[0][2]
    assert (res["lead_changes"], res["ties"]) == expected


def test_game_end_final_cleanup_and_closed() -> None:
    """GAME_END makes it FINAL; cleanup at max(end + 6 h, last + 10 min); later events LATE."""
    events = [ge(100, 1, "GAME_START"), ge(2100, 2, "GAME_END"), ui(HOUR, game="g1")]
    res = run([*events, ui(7 * HOUR, game="g1")])
    assert at(res.outputs, 3000)["status"] == "FINAL"
    tomb = [ft - T0 for _, ft, v in res.outputs if v is None]
    assert tomb == [2100 + 6 * HOUR + 900]  # ceil to the tick
    assert [(e.time - T0, r.reason, r.error[:11]) for e, r in res.rejected] == [
        (7 * HOUR, "LATE", "game closed")
    ]


def test_game_seen_only_in_interactions() -> None:
    """Without game events the record has null league/teams, SCHEDULED, and viewer counts."""
    res = run([ui(100, user="u1", game="g9"), ui(200, user="u2", game="g9")])
    first = res.outputs[0][2]
    assert (first["league"], first["home_team_id"], first["status"]) == (None, None, "SCHEDULED")
    assert (first["viewers_5m"], first["interactions_1m"], first["home_score"]) == (2, 2, 0)
    assert res.outputs[-1][1] - T0 == 1000 + DAY and res.outputs[-1][2] is None


def test_viewer_trend_compares_with_the_previous_five_minutes() -> None:
    """viewer_trend = viewers in the last 5 min / max(1, viewers in the 5 min before)."""
    events = [
        ui(100, "u1", game="g1"),
        ui(200, "u2", game="g1"),
        ui(5 * MINUTE + 500, "u3", game="g1"),
    ]
    out = run(events).outputs
    now = at(out, 5 * MINUTE + 1000)
    assert (now["viewers_5m"], now["viewer_trend"]) == (1, 0.5)
    assert at(out, 1000)["viewer_trend"] == 2.0


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {
                "status": "LIVE",
                "league": "NBA",
                "period": 4,
                "clock_seconds_remaining": 0,
                "score_diff": 0,
                "lead_changes": 0,
                "viewer_trend": 1.0,
            },
            0.6,
        ),
        (
            {
                "status": "LIVE",
                "league": "NBA",
                "period": 1,
                "clock_seconds_remaining": 720,
                "score_diff": 15,
                "lead_changes": 20,
                "viewer_trend": 5.0,
            },
            0.4,
        ),
        (
            {
                "status": "LIVE",
                "league": "EPL",
                "period": 2,
                "clock_seconds_remaining": 1350,
                "score_diff": 1,
                "lead_changes": 5,
                "viewer_trend": 2.0,
            },
            0.4 * 0.5 * 0.875 + 0.15 + 0.1 + 0.1,
        ),
        (
            {
                "status": "FINAL",
                "league": "NBA",
                "period": 4,
                "clock_seconds_remaining": 0,
                "score_diff": 0,
                "lead_changes": 9,
                "viewer_trend": 9.0,
            },
            0.0,
        ),
        (
            {
                "status": "LIVE",
                "league": None,
                "period": 0,
                "clock_seconds_remaining": 0,
                "score_diff": 40,
                "lead_changes": 0,
                "viewer_trend": 0.0,
            },
            0.0,
        ),
    ],
    ids=["close-finish", "blowout-start", "soccer-second-half", "final-is-zero", "pre-game"],
)
def test_excitement_formula(record: dict, expected: float) -> None:
    """Excitement follows the documented formula and stays within [0, 1]."""
    value = excitement(record)
    assert value == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= value <= 1.0


def test_lead_changes_ignore_superseded_revisions() -> None:
    """Only each event_id's latest revision takes part, at that revision's sequence."""
    from udfs.features.game import Play

    plays = [
        Play(1, 0, 0, {"home_score": 0, "away_score": 0}),
        Play(5, 1, 0, {"home_score": 1, "away_score": 0}),
    ]
    assert lead_changes_and_ties(plays) == (0, 0)
