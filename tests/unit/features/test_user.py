"""Per-user feature state machine (udfs/features/user.py), driven without Flink."""

from __future__ import annotations

import pickle

import pytest

from tests.unit.features.builders import T0, ui
from udfs.features import driver, user
from udfs.features.common import DAY, HOUR, MINUTE


def outputs(events, **kw):
    return driver.run("user", events, **kw).outputs


def test_single_interaction_emits_at_its_tick_each_window_exit_and_cleanup() -> None:
    """One interaction emits at its tick, where each window drops it, and a tombstone at 30 d."""
    out = outputs([ui(500)])
    assert [t - T0 for _, t, _ in out] == [
        1000,
        61000,
        301000,
        HOUR + 1000,
        DAY + 1000,
        30 * DAY + 1000,
    ]
    counts = [
        (v["interactions_1m"], v["interactions_5m"], v["interactions_1h"], v["interactions_24h"])
        for _, _, v in out[:-1]
    ]
    assert counts == [(1, 1, 1, 1), (0, 1, 1, 1), (0, 0, 1, 1), (0, 0, 0, 1), (0, 0, 0, 0)]
    assert out[-1][2] is None


@pytest.mark.parametrize(
    ("t", "first_tick", "exit_1m"),
    [(0, 0, MINUTE), (1, 1000, MINUTE + 1000), (999, 1000, MINUTE + 1000), (1000, 1000, 61000)],
    ids=["on-boundary", "just-after", "just-before-next", "next-boundary"],
)
def test_window_boundaries_are_half_open(t: int, first_tick: int, exit_1m: int) -> None:
    """An event on a tick boundary belongs to that tick; it leaves (T - w, T] exactly at e + w."""
    out = {ft - T0: v for _, ft, v in outputs([ui(t)])}
    assert out[first_tick]["interactions_1m"] == 1
    assert out[exit_1m]["interactions_1m"] == 0
    assert exit_1m - 1000 not in out  # nothing changed in between: nothing emitted


def test_key_idle_longer_than_every_window_keeps_unwindowed_state() -> None:
    """After 25 h idle the windows are empty but follows, affinity and identity remain."""
    out = outputs([ui(0, action="FOLLOW_TEAM", team="nba-bos"), ui(25 * HOUR)])
    last = next(v for _, t, v in out if t == T0 + 25 * HOUR)
    assert (last["interactions_24h"], last["interactions_1m"]) == (1, 1)
    assert last["followed_teams"] == ["nba-bos"] and last["top_teams"] == ["nba-bos"]
    assert last["session_id"] == f"u1:{T0 + 25 * HOUR}" and last["session_events"] == 1


def test_alerts_opened_1h_counts_alert_opens_in_the_last_hour() -> None:
    """alerts_opened_1h: ALERT_OPEN interactions in (T - 1 h, T]; other actions do not count."""
    events = [
        ui(0, action="ALERT_OPEN"),
        ui(1, action="ALERT_OPEN"),
        ui(2, action="CLICK"),
        ui(30 * MINUTE, action="ALERT_OPEN"),
    ]
    out = {t - T0: v for _, t, v in outputs(events)}
    got = {
        t: (out[t]["alerts_opened_1h"], out[t]["interactions_1h"])
        for t in (0, 1000, 30 * MINUTE, HOUR, HOUR + 1000, 90 * MINUTE)
    }
    assert got == {
        0: (1, 1),
        1000: (2, 3),
        30 * MINUTE: (3, 4),
        HOUR: (2, 3),  # the one at 0 is out: the window is (T - 1 h, T]
        HOUR + 1000: (1, 1),
        90 * MINUTE: (0, 0),
    }


def test_savepoint_from_before_alerts_opened_1h_restores_without_extra_emission() -> None:
    """Restored state whose last record lacks alerts_opened_1h (taken by release 1) emits
    only when something changed, and the next record it emits carries the field."""
    from udfs.features import user
    from udfs.features.common import offer

    state = user.new_state("u1")
    _, ticks = offer(state.clock, ui(500, action="ALERT_OPEN"), driver.MIN_WATERMARK, 1000)
    first = user.on_tick(state, ticks[0], 1000).emissions[0][1]
    assert first is not None and first["alerts_opened_1h"] == 1
    state.clock.last_record = {k: v for k, v in first.items() if k != "alerts_opened_1h"}
    state = pickle.loads(pickle.dumps(state))
    state.clock.schedule([T0 + 30_000])  # a tick at which nothing changes
    assert user.on_tick(state, T0 + 30_000, 1000).emissions == []
    [(tick, rec)] = user.on_tick(state, T0 + 61_000, 1000).emissions  # leaves the 1 min window
    assert tick == T0 + 61_000 and rec is not None
    assert (rec["interactions_1m"], rec["alerts_opened_1h"]) == (0, 1)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([("FOLLOW_TEAM", "z"), ("FOLLOW_TEAM", "a")], ["a", "z"]),
        ([("CLICK", "b"), ("CLICK", "c"), ("FOLLOW_TEAM", "d"), ("CLICK", "a")], ["d", "a", "b"]),
        ([("CLICK", "x"), ("UNFOLLOW_TEAM", "x"), ("CLICK", "y")], ["y"]),
        ([("UNFOLLOW_TEAM", "never")], []),
    ],
    ids=["tie-by-id", "follow-weighs-5", "unfollow-resets", "unfollow-never-followed"],
)
def test_top_teams(events: list[tuple[str, str]], expected: list[str]) -> None:
    """top_teams: weight 5 for follows, resets at unfollow, equal affinities ordered by team id."""
    out = outputs([ui(0, action=a, team=team) for a, team in events])
    assert out[0][2]["top_teams"] == expected


def test_unfollow_of_a_team_never_followed_is_accepted_and_changes_nothing() -> None:
    """UNFOLLOW_TEAM of an unknown team is a valid, counted interaction with no follow change."""
    res = driver.run(
        "user", [ui(100, action="FOLLOW_TEAM", team="a"), ui(110, action="UNFOLLOW_TEAM", team="b")]
    )
    assert not res.rejected
    first = res.outputs[0][2]
    assert first["followed_teams"] == ["a"] and first["interactions_1m"] == 2


@pytest.mark.parametrize(
    ("gap", "new_session"),
    [(30 * MINUTE, True), (30 * MINUTE - 1, False), (0, False)],
    ids=["exactly-30-min", "just-under", "same-ms"],
)
def test_session_gap(gap: int, new_session: bool) -> None:
    """A gap of 30 minutes or more starts a new session; less continues it."""
    out = outputs([ui(0), ui(gap)])
    at = next(v for _, t, v in out if t >= T0 + gap)
    if new_session:
        assert (at["session_id"], at["session_events"]) == (f"u1:{T0 + gap}", 1)
    else:
        assert (at["session_id"], at["session_events"]) == (f"u1:{T0}", 2)
        assert at["session_duration_s"] == gap // 1000


@pytest.mark.parametrize(
    ("games", "expected"),
    [
        ([("g2", 100), ("g1", 110), ("g2", 120), ("g1", 130)], "g1"),  # tie on count: latest wins
        ([("g2", 0), ("g1", 0)], "g1"),  # tie on count and time: smallest id
        ([("g2", 100), ("g2", 105), ("g1", 110)], "g2"),  # most interactions
        ([(None, 0)], None),
    ],
    ids=["latest-breaks-tie", "smallest-id-breaks-tie", "most", "none"],
)
def test_watching_game_id(games: list[tuple[str | None, int]], expected: str | None) -> None:
    """watching_game_id: most interactions in 5 min, then latest interaction, then smallest id."""
    out = outputs([ui(t, game=g) for g, t in games])
    assert out[0][2]["watching_game_id"] == expected


@pytest.mark.parametrize(
    ("order", "followed"),
    [(["FOLLOW_TEAM", "UNFOLLOW_TEAM"], []), (["UNFOLLOW_TEAM", "FOLLOW_TEAM"], ["x"])],
)
def test_equal_timestamps_apply_in_offset_order(order: list[str], followed: list[str]) -> None:
    """Events with the same event time apply in (topic, partition, offset) order."""
    events = [ui(100, action=a, team="x") for a in order]
    assert outputs(list(reversed(events)))[0][2]["followed_teams"] == followed


def test_late_and_duplicate_are_rejected_with_reasons() -> None:
    """Behind the watermark is LATE; the same (event_id, revision) again is DUPLICATE."""
    res = driver.run(
        "user",
        [ui(10_000, eid="a"), ui(10_500, eid="a"), ui(5_000, eid="b"), ui(20_000, eid="c")],
        out_of_orderness_ms=2_000,
    )
    assert [(e.record["event_id"], r.reason) for e, r in res.rejected] == [
        ("a", "DUPLICATE"),
        ("b", "LATE"),
    ]
    assert [e.record["event_id"] for e in res.accepted] == ["a", "c"]


def test_event_behind_last_evaluated_tick_is_late_even_without_watermark() -> None:
    """After a tick was evaluated for a key, an older event for it is LATE (restore case)."""
    from udfs.features import user
    from udfs.features.common import offer

    state = user.new_state("u1")
    _, ticks = offer(state.clock, ui(1_500), driver.MIN_WATERMARK, 1000)
    step = user.on_tick(state, ticks[0], 1000)
    assert step.emissions and step.state is not None
    state = step.state
    rejected, _ = offer(state.clock, ui(1_200), driver.MIN_WATERMARK, 1000)
    assert rejected is not None and rejected.reason == "LATE"


def test_user_comes_back_after_cleanup_as_a_new_user() -> None:
    """31 days later the user was tombstoned and starts again with fresh follows and session."""
    out = outputs([ui(0, action="FOLLOW_TEAM", team="a"), ui(31 * DAY)])
    tomb = [t for _, t, v in out if v is None]
    assert tomb[0] == T0 + 30 * DAY
    after = next(v for _, t, v in out if t == T0 + 31 * DAY)
    assert after["followed_teams"] == [] and after["top_teams"] == []


def _top_teams_before(affinity: dict[str, float]) -> list[str]:
    """top_teams as it was before its early exit (every team inserted, then cut to 3)."""
    ranked = sorted(((a, t) for t, a in affinity.items() if a > 0), key=lambda x: (-x[0], x[1]))
    out: list[tuple[float, str]] = []
    for a, team in ranked:
        pos = len(out)
        while pos > 0 and user._tied(out[pos - 1][0], a) and out[pos - 1][1] > team:
            pos -= 1
        out.insert(pos, (a, team))
    return [t for _, t in out[: user.TOP_N]]


def test_top_teams_early_exit_ranks_exactly_as_inserting_every_team() -> None:
    """Near ties (within 1e-9 relative, not transitive) are where an early exit could go
    wrong: values here cluster at a few levels, spaced by fractions of the tolerance."""
    import random

    rng = random.Random(6)
    for _ in range(20_000):
        levels = [rng.choice([0.5, 1.0, 2.0, 5.0]) for _ in range(rng.randint(1, 3))]
        affinity = {
            f"t{rng.randrange(12):02d}": rng.choice(levels)
            * (1 + rng.choice([0, 0, 1, -1, 2, 0.4, -0.6]) * 0.7 * user.TIE_TOLERANCE)
            for _ in range(rng.randint(0, 9))
        }
        if affinity and rng.random() < 0.1:
            affinity[next(iter(affinity))] = 0.0
        assert user.top_teams(affinity) == _top_teams_before(affinity), affinity
