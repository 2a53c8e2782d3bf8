"""Hand-computed expectations for the brute-force GameFeatures oracle."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from tests.oracle.game_oracle import excitement, game_features, lead_changes_and_ties
from tests.oracle.model import HOUR, MIN, Accepted, Output

B = 1_700_000_000_000  # on a tick boundary
_offsets = itertools.count()
SCHEMAS = Path(__file__).parents[3] / "avro_schemas" / "features"


def ge(
    seq: int,
    t: int,
    event_type: str,
    score: tuple[int, int],
    *,
    team: str | None = None,
    points: int = 0,
    eid: str | None = None,
    rev: int = 0,
    period: int = 1,
    clock: int = 720,
) -> Accepted:
    """A GameEvent of NBA game g1, home H vs away A."""
    record = {
        "event_id": eid or f"e{seq}",
        "game_id": "g1",
        "league": "NBA",
        "event_type": event_type,
        "team_id": team,
        "player_id": None,
        "points": points,
        "home_team_id": "H",
        "away_team_id": "A",
        "home_score": score[0],
        "away_score": score[1],
        "period": period,
        "clock_seconds_remaining": clock,
        "sequence": seq,
        "revision": rev,
        "event_time": t,
    }
    return Accepted("game", "sports.game_events", 0, next(_offsets), record)


def ui(t: int, user: str = "u1", game: str | None = "g1") -> Accepted:
    record = {"event_id": f"i{next(_offsets)}", "user_id": user, "action": "PAGE_VIEW"}
    record.update({"game_id": game, "team_id": None, "event_time": t})
    return Accepted("interaction", "sports.user_interactions", 0, next(_offsets), record)


def at(outputs: list[Output], t: int) -> dict[str, Any]:
    [value] = [o.value for o in outputs if o.feature_time == t]
    assert value is not None
    return value


NBA = {"game_id": "g1", "league": "NBA", "home_team_id": "H", "away_team_id": "A"}
QUIET = {"viewers_5m": 0, "viewer_trend": 0.0, "interactions_1m": 0}


def test_game_with_correction_and_end() -> None:
    """Scores, 5 min points, lead changes and ties follow a correction; GAME_END closes at +6h."""
    events = [
        ge(1, B, "GAME_START", (0, 0)),
        ge(2, B + 10_000, "SCORE", (2, 0), team="H", points=2, eid="p1", clock=700),
        ge(3, B + 20_000, "SCORE", (2, 3), team="A", points=3, eid="p2", clock=680),
        # the correction makes p1 a three: its points move, the 2-3 lead change disappears
        ge(4, B + 30_000, "SCORE", (3, 3), team="H", points=3, eid="p1", rev=1, clock=670),
        ge(5, B + 40_000, "GAME_END", (3, 3), period=4, clock=0),
    ]
    # Each tick's record is the previous one with these fields changed.
    p1, p2, p3 = 1 / 144, 1 / 72, 5 / 288  # progress: (1 - clock / 720) / 4
    changes = [
        (B, {"period": 1, "clock_seconds_remaining": 720, "home_score": 0, "away_score": 0}),
        (B, {"score_diff": 0, "lead_changes": 0, "ties": 0, "excitement": 0.4 * 0.5}),
        (B, {"home_points_5m": 0, "away_points_5m": 0, "scoring_plays_5m": 0}),
        (B + 10_000, {"clock_seconds_remaining": 700, "home_score": 2, "score_diff": 2}),
        (B + 10_000, {"home_points_5m": 2, "scoring_plays_5m": 1}),
        (B + 10_000, {"excitement": 0.4 * (13 / 15) * (0.5 + 0.5 * p1) + 0.2 * p1}),
        (B + 20_000, {"clock_seconds_remaining": 680, "away_score": 3, "score_diff": -1}),
        (B + 20_000, {"lead_changes": 1, "away_points_5m": 3, "scoring_plays_5m": 2}),
        (B + 20_000, {"excitement": 0.4 * (14 / 15) * (0.5 + 0.5 * p2) + 0.2 * p2 + 0.02}),
        (B + 30_000, {"clock_seconds_remaining": 670, "home_score": 3, "score_diff": 0}),
        (B + 30_000, {"lead_changes": 0, "ties": 1, "home_points_5m": 3}),
        (B + 30_000, {"excitement": 0.4 * (0.5 + 0.5 * p3) + 0.2 * p3}),
        (B + 40_000, {"status": "FINAL", "period": 4, "clock_seconds_remaining": 0}),
        (B + 40_000, {"excitement": 0.0}),
        (B + 310_000, {"home_points_5m": 0, "scoring_plays_5m": 1}),  # p1's original + 5 min
        (B + 320_000, {"away_points_5m": 0, "scoring_plays_5m": 0}),
    ]
    state: dict[str, Any] = {**NBA, "status": "LIVE", **QUIET}
    by_tick: dict[int, dict[str, Any]] = {}
    for t, change in changes:
        state.update(change)
        by_tick[t] = {**state, "feature_time": t}
    expected = [Output("g1", t, value) for t, value in by_tick.items()]
    expected.append(Output("g1", B + 40_000 + 6 * HOUR, None))
    got = game_features(events)
    assert [(o.key, o.feature_time) for o in got] == [(o.key, o.feature_time) for o in expected]
    for g, e in zip(got, expected, strict=True):
        if e.value is not None:
            e.value["excitement"] = pytest.approx(e.value["excitement"], rel=1e-12, abs=1e-15)
        assert g.value == e.value


def test_game_seen_only_in_interactions() -> None:
    """A game with only interactions is SCHEDULED with null teams and closes 24 h after them."""
    base = {**NBA, "league": None, "home_team_id": None, "away_team_id": None}
    counters = "period clock_seconds_remaining home_score away_score score_diff lead_changes ties"
    zeros = dict.fromkeys([*counters.split(), "home_points_5m", "away_points_5m"], 0)
    zeros["scoring_plays_5m"] = 0
    rec = {**base, "status": "SCHEDULED", **zeros, "viewers_5m": 1, "viewer_trend": 1.0}
    rec.update({"interactions_1m": 1, "excitement": 0.0})
    expected = [Output("g1", B + 1000, {**rec, "feature_time": B + 1000})]
    rec["interactions_1m"] = 0
    expected.append(Output("g1", B + 61_000, {**rec, "feature_time": B + 61_000}))
    rec.update({"viewers_5m": 0, "viewer_trend": 0.0})  # 0 / max(1, 1); at +10 min 0 / 1: no emit
    expected.append(Output("g1", B + 301_000, {**rec, "feature_time": B + 301_000}))
    expected.append(Output("g1", B + 24 * HOUR + 1000, None))
    assert game_features([ui(B + 500), ui(B, game=None)]) == expected


def test_viewer_trend() -> None:
    """viewer_trend = distinct users in (T-5m, T] / max(1, distinct users in (T-10m, T-5m])."""
    users = [(0, "u1"), (0, "u4"), (1, "u2"), (5 * MIN, "u2"), (5 * MIN, "u3"), (5 * MIN, "u5")]
    got = [
        (
            o.feature_time - B,
            o.value["viewers_5m"],
            o.value["viewer_trend"],
            o.value["interactions_1m"],
        )
        for o in game_features([ui(B + dt, user) for dt, user in users])
        if o.value is not None
    ]
    assert got == [
        (0, 2, 2.0, 2),  # nobody in the baseline: divide by 1
        (1000, 3, 3.0, 3),
        (MIN, 3, 3.0, 1),  # the event at B + 1 is still in (T - 1m, T]
        (MIN + 1000, 3, 3.0, 0),
        (5 * MIN, 3, 1.5, 3),  # u1 and u4 moved to the baseline, u2 at B + 1 did not
        (5 * MIN + 1000, 3, 1.0, 3),
        (6 * MIN, 3, 1.0, 0),
        (10 * MIN, 0, 0.0, 0),  # at 15 min the baseline empties too, but 0 / 1 == 0 / 3
    ]


def test_record_fields_match_the_avro_schema() -> None:
    """A game record holds every GameFeatures field except computed_at."""
    schema = json.loads((SCHEMAS / "GameFeatures.avsc").read_text())
    fields = {f["name"] for f in schema["fields"]} - {"computed_at"}
    out = game_features([ge(1, B, "GAME_START", (0, 0)), ui(B)])
    assert all(set(o.value) == fields for o in out if o.value is not None)


def scores(*pairs: tuple[int, int]) -> list[dict[str, Any]]:
    return [ge(i + 1, B + i, "SCORE", p).record for i, p in enumerate(pairs)]


# p1 corrected to 3-3 at sequence 3: the walk is 2-3 (p2), 3-3 (p1 at revision 1).
CORRECTED = [
    ge(1, B, "SCORE", (2, 0), eid="p1").record,
    ge(2, B, "SCORE", (2, 3), eid="p2").record,
    ge(3, B, "SCORE", (3, 3), eid="p1", rev=1).record,
]


@pytest.mark.parametrize(
    ("plays", "lead_changes", "ties"),
    [
        (scores((0, 0), (2, 0), (2, 2), (2, 3), (5, 3)), 2, 1),
        (scores((0, 0), (0, 0)), 0, 0),
        (scores((2, 0), (4, 0), (4, 4), (6, 4)), 0, 1),  # same leader after a tie: no change
        (scores((0, 2), (3, 2)), 1, 0),
        (scores((2, 3), (2, 0))[::-1], 1, 0),  # walked in sequence order, not list order
        (CORRECTED, 0, 1),
    ],
)
def test_lead_changes_and_ties(plays: list[dict[str, Any]], lead_changes: int, ties: int) -> None:
    """A lead change is a new non-zero leader (the first is not); a tie is level after unequal."""
    assert lead_changes_and_ties(plays) == (lead_changes, ties)


def test_lead_changes_in_records() -> None:
    """The record after 0-0, 2-0, 2-2, 2-3, 5-3 has 2 lead changes and 1 tie."""
    pairs = [(0, 0), (2, 0), (2, 2), (2, 3), (5, 3)]
    out = game_features([ge(i + 1, B + 1000 * i, "SCORE", p) for i, p in enumerate(pairs)])
    rec = at(out, B + 4000)
    assert (rec["lead_changes"], rec["ties"], rec["score_diff"]) == (2, 1, 2)


def test_correction_without_original_counts_from_its_own_time() -> None:
    """A correction whose revision 0 was not accepted is a play anchored at its own time."""
    out = game_features([ge(2, B, "SCORE", (0, 2), team="A", points=2, eid="p", rev=1)])
    assert at(out, B)["away_points_5m"] == 2
    assert at(out, B + 5 * MIN)["scoring_plays_5m"] == 0


@pytest.mark.parametrize(
    ("last_interaction", "cleanup"),
    [(5 * HOUR, 1000 + 6 * HOUR), (6 * HOUR, 6 * HOUR + 10 * MIN)],
)
def test_cleanup_after_game_end(last_interaction: int, cleanup: int) -> None:
    """A finished game is cleared at max(GAME_END + 6 h, latest event + 10 min)."""
    events = [ge(1, B, "GAME_START", (0, 0)), ge(2, B + 1000, "GAME_END", (0, 0))]
    out = game_features([*events, ui(B + last_interaction)])
    assert out[-1] == Output("g1", B + cleanup, None)


@pytest.mark.parametrize(("gap", "closed"), [(24 * HOUR, False), (24 * HOUR + 1, True)])
def test_event_after_close_is_rejected(gap: int, closed: bool) -> None:
    """Accepted sets never hold events after a game's tombstone, so the oracle refuses them."""
    events = [ge(1, B, "GAME_START", (0, 0)), ui(B + gap)]
    if closed:
        with pytest.raises(ValueError, match="closed"):
            game_features(events)
    else:
        assert game_features(events)[-1] == Output("g1", B + gap + 24 * HOUR, None)


@pytest.mark.parametrize(
    ("case", "value"),
    [
        # (status, league, period, clock_seconds_remaining, score_diff, lead_changes, trend)
        (("LIVE", "NBA", 4, 0, 0, 0, 1.0), 0.6),
        (("LIVE", "NHL", 2, 600, 1, 5, 2.0), 0.5),
        (("LIVE", "EPL", 0, 2700, 5, 20, 5.0), 0.4),
        (("LIVE", "MLS", 1, 1350, 1, 0, 1.0), 0.175),
        (("LIVE", None, 2, 450, -5, 10, 3.0), 0.6125),
        (("LIVE", "MLB", 2, 450, -5, 10, 3.0), 0.6125),  # not in the table: the "other" row
        (("LIVE", "NBA", 5, 300, 0, 0, 0.5), 0.6),  # overtime: progress capped at 1
        (("LIVE", "NFL", 1, 900, 14, 0, 1.0), 0.0),
        (("FINAL", "NBA", 4, 0, 0, 9, 4.0), 0.0),
        (("SCHEDULED", None, 0, 0, 0, 0, 0.0), 0.0),
    ],
)
def test_excitement_values(case: tuple[Any, ...], value: float) -> None:
    """Excitement matches hand-computed values of the documented formula and league table."""
    assert excitement(*case) == pytest.approx(value, rel=1e-12, abs=1e-15)


def test_excitement_in_unit_interval() -> None:
    """Excitement stays within [0, 1] over a grid of extreme and ordinary game states."""
    for league, period, clock, diff, changes, trend in itertools.product(
        ["NBA", "NFL", "NHL", "EPL", "MLS", None],
        [0, 1, 2, 4, 9],
        [0, 300, 2700, 9999],
        [-40, -1, 0, 1, 40],
        [0, 3, 50],
        [0.0, 1.0, 2.5, 100.0],
    ):
        assert 0.0 <= excitement("LIVE", league, period, clock, diff, changes, trend) <= 1.0
