"""Hand-computed expectations for the brute-force UserFeatures oracle."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from tests.oracle.model import DAY, HOUR, MIN, Accepted, Output
from tests.oracle.user_oracle import rank_teams, user_features

B = 1_700_000_000_000  # on a tick boundary
TOPIC = "sports.user_interactions"
_offsets = itertools.count()
SCHEMAS = Path(__file__).parents[3] / "avro_schemas" / "features"


def ui(
    t: int,
    action: str = "PAGE_VIEW",
    *,
    user: str = "u1",
    game: str | None = None,
    team: str | None = None,
    topic: str = TOPIC,
    partition: int = 0,
    offset: int | None = None,
) -> Accepted:
    record = dict.fromkeys(["session_hint", "league", "content_id", "dwell_ms"])
    record.update(event_id=f"i{next(_offsets)}", user_id=user, action=action, device="WEB")
    record.update(game_id=game, team_id=team, event_time=t)
    pos = next(_offsets) if offset is None else offset
    return Accepted("interaction", topic, partition, pos, record)


def at(outputs: list[Output], t: int, key: str = "u1") -> dict[str, Any]:
    """The value emitted for `key` at feature_time t (which must exist and not be a tombstone)."""
    [value] = [o.value for o in outputs if o.key == key and o.feature_time == t]
    assert value is not None
    return value


def last(events: list[Accepted]) -> dict[str, Any]:
    """The record emitted at the tick of the latest event."""
    t = max(ev.time for ev in events)
    return at(user_features(events), -(-t // 1000) * 1000)


def test_single_interaction_emits_at_its_tick_each_window_drop_and_tombstone() -> None:
    """One interaction emits at its tick, when it leaves 1m/5m/1h/24h, then a tombstone at +30d."""
    e = B + 500
    base = dict.fromkeys(["interactions_1m", "interactions_5m", "interactions_1h"], 1)
    base.update(user_id="u1", interactions_24h=1, video_starts_1h=0, distinct_games_1h=0)
    base.update(alerts_opened_1h=0)
    base.update(followed_teams=[], top_teams=[], session_id=f"u1:{e}", session_events=1)
    base.update(session_duration_s=0, watching_game_id=None, last_active_at=e)
    drops = [
        (B + 61_000, {"interactions_1m": 0}),
        (B + 301_000, {"interactions_5m": 0}),
        (B + 3_601_000, {"interactions_1h": 0}),
        (B + 86_401_000, {"interactions_24h": 0}),
    ]
    expected = [Output("u1", B + 1000, {**base, "feature_time": B + 1000})]
    for t, change in drops:
        base = {**base, **change}
        expected.append(Output("u1", t, {**base, "feature_time": t}))
    expected.append(Output("u1", B + 30 * DAY + 1000, None))
    assert user_features([ui(e)]) == expected


def test_event_on_tick_boundary_belongs_to_that_tick() -> None:
    """An event exactly at a tick boundary is counted at that tick and leaves at boundary + w."""
    ticks = [B, B + MIN, B + 5 * MIN, B + HOUR, B + DAY, B + 30 * DAY]
    assert [o.feature_time for o in user_features([ui(B)])] == ticks


@pytest.mark.parametrize(
    ("field", "w"),
    [
        ("interactions_1m", MIN),
        ("interactions_5m", 5 * MIN),
        ("interactions_1h", HOUR),
        ("interactions_24h", DAY),
    ],
)
def test_window_excludes_t_minus_w_and_includes_t_minus_w_plus_1(field: str, w: int) -> None:
    """At tick T the window is (T - w, T]: an event at T - w is out, one at T - w + 1 is in."""
    out = user_features([ui(B), ui(B + 1)])
    assert at(out, B + w)[field] == 1
    assert at(out, B + w + 1000)[field] == 0


def test_video_starts_and_distinct_games_in_one_hour() -> None:
    """video_starts_1h counts VIDEO_START; distinct_games_1h counts distinct non-null game_id."""
    events = [
        ui(B, "VIDEO_START", game="g1"),
        ui(B + 1, "PAGE_VIEW", game="g2"),
        ui(B + 2, "CLICK", game="g1"),
        ui(B + 3, "VIDEO_START"),
    ]
    out = user_features(events)
    for t, count in [(B + 1000, 2), (B + HOUR + 1000, 0)]:
        assert (at(out, t)["video_starts_1h"], at(out, t)["distinct_games_1h"]) == (count, count)


def test_alerts_opened_1h() -> None:
    """alerts_opened_1h counts ALERT_OPEN in (T - 1 h, T]: at T - 1 h out, T - 1 h + 1 in."""
    events = [
        ui(B, "ALERT_OPEN"),
        ui(B + 1, "ALERT_OPEN", game="g1"),
        ui(B + 2, "VIDEO_START"),
        ui(B + 20 * MIN, "ALERT_OPEN"),
    ]
    out = user_features(events)
    got = [at(out, t)["alerts_opened_1h"] for t in (B, B + 1000, B + 20 * MIN, B + HOUR)]
    assert got == [1, 2, 3, 2]
    assert at(out, B + HOUR + 1000)["alerts_opened_1h"] == 1
    assert at(out, B + HOUR + 20 * MIN)["alerts_opened_1h"] == 0


@pytest.mark.parametrize(
    ("actions", "followed", "top"),
    [
        ([("FOLLOW_TEAM", "t1")], ["t1"], ["t1"]),
        ([("FOLLOW_TEAM", "t1"), ("UNFOLLOW_TEAM", "t1")], [], []),
        ([("FOLLOW_TEAM", "t1"), ("UNFOLLOW_TEAM", "t1"), ("CLICK", "t1")], [], ["t1"]),
        ([("UNFOLLOW_TEAM", "t9")], [], []),
        (
            [("FOLLOW_TEAM", "t2"), ("UNFOLLOW_TEAM", "t9"), ("FOLLOW_TEAM", "t1")],
            ["t1", "t2"],
            ["t1", "t2"],
        ),
    ],
)
def test_follow_and_unfollow(
    actions: list[tuple[str, str]], followed: list[str], top: list[str]
) -> None:
    """FOLLOW adds, UNFOLLOW removes (no-op if never followed) and resets the team's affinity."""
    events = [ui(B + 10_000 * i, action, team=team) for i, (action, team) in enumerate(actions)]
    rec = last(events)
    assert (rec["followed_teams"], rec["top_teams"]) == (followed, top)


def test_follow_then_unfollow_over_time() -> None:
    """followed_teams and top_teams follow FOLLOW, UNFOLLOW and a later click tick by tick."""
    out = user_features(
        [
            ui(B, "FOLLOW_TEAM", team="t1"),
            ui(B + 10_000, "UNFOLLOW_TEAM", team="t1"),
            ui(B + 20_000, "CLICK", team="t1"),
        ]
    )
    got = [
        (at(out, t)["followed_teams"], at(out, t)["top_teams"]) for t in (B, B + 10_000, B + 20_000)
    ]
    assert got == [(["t1"], ["t1"]), ([], []), ([], ["t1"])]


@pytest.mark.parametrize(
    ("events", "top"),
    [
        # equal affinities are ordered by team id; only the first 3 are kept
        (
            [("b", "CLICK", 0), ("a", "CLICK", 0), ("d", "CLICK", 0), ("c", "FOLLOW_TEAM", 0)],
            ["c", "a", "b"],
        ),
        # 1 ms newer is a relative difference of 1.15e-9 > 1e-9: not a tie
        ([("a", "CLICK", 0), ("b", "CLICK", 1)], ["b", "a"]),
        # a FOLLOW two half-lives old (5 / 4) is below three fresh clicks
        ([("a", "FOLLOW_TEAM", 0), *[("b", "CLICK", 14 * DAY)] * 3], ["b", "a"]),
    ],
)
def test_top_teams_order(events: list[tuple[str, str, int]], top: list[str]) -> None:
    """top_teams: highest decayed affinity first, ties (1e-9 relative) by team id, at most 3."""
    assert last([ui(B + dt, action, team=team) for team, action, dt in events])["top_teams"] == top


@pytest.mark.parametrize(
    ("affinities", "ranked"),
    [
        ({"b": 1.0, "a": 1.0 + 5e-10}, ["a", "b"]),
        ({"a": 1.0, "b": 1.0 + 2e-9}, ["b", "a"]),
        ({"a": 0.0, "b": 0.5}, ["b"]),
        ({}, []),
    ],
)
def test_rank_teams_tolerance(affinities: dict[str, float], ranked: list[str]) -> None:
    """Affinities within 1e-9 relative are tied (team id order); zero affinity is dropped."""
    assert rank_teams(affinities) == ranked


@pytest.mark.parametrize(
    ("offsets", "session_id", "session_events", "duration_s"),
    [
        ([0, 30 * MIN], f"u1:{B + 30 * MIN}", 1, 0),
        ([0, 30 * MIN - 1], f"u1:{B}", 2, 1799),
        ([0, 10 * MIN, 50 * MIN], f"u1:{B + 50 * MIN}", 1, 0),
        ([0, 10 * MIN, 20 * MIN + 500], f"u1:{B}", 3, 1200),
    ],
)
def test_session_gap(
    offsets: list[int], session_id: str, session_events: int, duration_s: int
) -> None:
    """A gap of exactly 30 min starts a new session; 30 min - 1 ms does not."""
    rec = last([ui(B + dt) for dt in offsets])
    assert (rec["session_id"], rec["session_events"], rec["session_duration_s"]) == (
        session_id,
        session_events,
        duration_s,
    )


@pytest.mark.parametrize(
    ("events", "watching"),
    [
        ([(0, "g2"), (1000, "g1")], "g1"),  # equal counts: latest interaction wins
        ([(0, "g2"), (0, "g1")], "g1"),  # equal counts and times: smallest id
        ([(0, "g1"), (1000, "g2"), (2000, "g2")], "g2"),  # most interactions
        ([(0, "g2"), (0, "g2"), (1000, "g1"), (1000, "g1")], "g1"),
        ([(0, "g1"), (0, "g1"), (5 * MIN, "g2")], "g2"),  # g1 left the 5 min window
        ([(0, None)], None),
    ],
)
def test_watching_game_id(events: list[tuple[int, str | None]], watching: str | None) -> None:
    """watching_game_id: most interactions in 5 min, then latest interaction, then smallest id."""
    assert last([ui(B + dt, game=game) for dt, game in events])["watching_game_id"] == watching


@pytest.mark.parametrize(
    ("follow", "unfollow", "followed"),
    [
        ({"offset": 1}, {"offset": 2}, []),
        ({"offset": 2}, {"offset": 1}, ["t1"]),
        ({"partition": 1, "offset": 0}, {"partition": 0, "offset": 9}, ["t1"]),
        ({"topic": "a", "partition": 9}, {"topic": "b", "partition": 0}, []),
    ],
)
def test_equal_timestamps_ordered_by_topic_partition_offset(
    follow: dict[str, Any], unfollow: dict[str, Any], followed: list[str]
) -> None:
    """Events with equal event_time apply in (topic, partition, offset) order, not input order."""
    events = [
        ui(B, "UNFOLLOW_TEAM", team="t1", **unfollow),
        ui(B, "FOLLOW_TEAM", team="t1", **follow),
    ]
    assert last(events)["followed_teams"] == followed


def test_event_after_tombstone_starts_a_new_user() -> None:
    """An event after the cleanup tick follows the tombstone and starts from nothing."""
    later = B + 30 * DAY + 1
    out = user_features([ui(B, "FOLLOW_TEAM", team="t1"), ui(later)])
    tombstones = [o.feature_time for o in out if o.value is None]
    assert tombstones == [B + 30 * DAY, B + 60 * DAY + 1000]
    rec = at(out, B + 30 * DAY + 1000)
    assert (rec["followed_teams"], rec["top_teams"], rec["session_id"]) == ([], [], f"u1:{later}")
    assert (rec["interactions_24h"], rec["last_active_at"]) == (1, later)


def test_event_at_cleanup_tick_keeps_the_user() -> None:
    """An event exactly at the cleanup tick moves the timer: no tombstone, state kept."""
    out = user_features([ui(B, "FOLLOW_TEAM", team="t1"), ui(B + 30 * DAY)])
    assert [o.feature_time for o in out if o.value is None] == [B + 60 * DAY]
    assert at(out, B + 30 * DAY)["followed_teams"] == ["t1"]
    assert at(out, B + 30 * DAY)["top_teams"] == ["t1"]


def test_keys_sorted_and_game_events_ignored() -> None:
    """Output is sorted by (key, feature_time) and game events create no user."""
    game = Accepted("game", "sports.game_events", 0, 0, {"game_id": "g1", "event_time": B})
    out = user_features([ui(B + 5000, user="u2"), game, ui(B, user="u1")])
    assert {o.key for o in out} == {"u1", "u2"}
    assert out == sorted(out, key=lambda o: (o.key, o.feature_time))


def test_record_fields_match_the_avro_schema() -> None:
    """A user record holds every UserFeatures field except computed_at."""
    schema = json.loads((SCHEMAS / "UserFeatures.avsc").read_text())
    fields = {f["name"] for f in schema["fields"]} - {"computed_at"}
    out = user_features([ui(B, "FOLLOW_TEAM", team="t1", game="g1")])
    assert all(set(o.value) == fields for o in out if o.value is not None)
