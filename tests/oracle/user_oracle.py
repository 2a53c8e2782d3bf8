"""Brute-force UserFeatures: every record recomputed from the raw event list at each tick."""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable

from tests.oracle.model import (
    DAY,
    HOUR,
    MIN,
    Accepted,
    Output,
    Record,
    ceil_tick,
    check_kinds,
    emit_ticks,
)

# Window length per count field; also every window length the user family uses.
WINDOWS = {
    "interactions_1m": MIN,
    "interactions_5m": 5 * MIN,
    "interactions_1h": HOUR,
    "interactions_24h": DAY,
}
SESSION_GAP = 30 * MIN
HALF_LIFE = 7 * DAY
RETENTION = 30 * DAY
TIE_REL = 1e-9
TOP_N = 3


def user_features(events: Iterable[Accepted], tick_ms: int = 1000) -> list[Output]:
    """Every UserFeatures record and tombstone a bounded run emits, sorted by (key, time)."""
    by_user: dict[str, list[Accepted]] = defaultdict(list)
    for ev in check_kinds(events):
        if ev.kind == "interaction":
            by_user[ev.record["user_id"]].append(ev)
    out: list[Output] = []
    for user in sorted(by_user):
        for life in lives(sorted(by_user[user], key=Accepted.order), tick_ms):
            out.extend(_one_life(user, life, tick_ms))
    return out


def lives(events: list[Accepted], tick: int) -> list[list[Accepted]]:
    """Splits a user's sorted events where the cleanup of the earlier ones came first.

    The user is cleared at C = ceil_tick(last + 30 days) unless an event <= C exists (which
    moves the timer); an event after C therefore belongs to a brand-new user.
    """
    result: list[list[Accepted]] = []
    for ev in events:
        if result and ev.time <= ceil_tick(result[-1][-1].time + RETENTION, tick):
            result[-1].append(ev)
        else:
            result.append([ev])
    return result


def _one_life(user: str, events: list[Accepted], tick: int) -> list[Output]:
    times = [ev.time for ev in events]
    cleanup = ceil_tick(times[-1] + RETENTION, tick)

    def record_at(t: int) -> Record | None:
        return user_record(user, events[: bisect_right(times, t)], t)

    return emit_ticks(user, events, WINDOWS.values(), cleanup, record_at, tick)


def user_record(user: str, seen: list[Accepted], t: int) -> Record | None:
    """The record at tick t from `seen`: the life's events <= t, in event order; no feature_time."""
    if not seen:
        return None
    times = [ev.time for ev in seen]

    def window(w: int) -> list[Accepted]:
        """The half-open window (t - w, t]: a suffix of `seen`, which holds only events <= t."""
        return seen[bisect_right(times, t - w) :]

    rec: Record = {"user_id": user}
    for name, w in WINDOWS.items():
        rec[name] = len(window(w))
    last_hour = [ev.record for ev in window(HOUR)]
    rec["video_starts_1h"] = sum(1 for r in last_hour if r["action"] == "VIDEO_START")
    rec["alerts_opened_1h"] = sum(1 for r in last_hour if r["action"] == "ALERT_OPEN")
    rec["distinct_games_1h"] = len({r["game_id"] for r in last_hour if r["game_id"] is not None})
    rec["followed_teams"] = _followed(seen)
    rec["top_teams"] = rank_teams(_affinities(seen, t))[:TOP_N]
    rec.update(_session(user, seen))
    rec["watching_game_id"] = _watching(window(5 * MIN))
    rec["last_active_at"] = max(times)
    return rec


def _followed(seen: list[Accepted]) -> list[str]:
    teams: set[str] = set()
    for ev in seen:
        action, team = ev.record["action"], ev.record["team_id"]
        if action == "FOLLOW_TEAM":
            teams.add(team)
        elif action == "UNFOLLOW_TEAM":
            teams.discard(team)  # unfollowing a team never followed is a no-op
    return sorted(teams)


def _affinities(seen: list[Accepted], t: int) -> dict[str, float]:
    """Decayed affinity per team over its events strictly after its last UNFOLLOW_TEAM."""
    last_unfollow: dict[str, int] = {}
    for i, ev in enumerate(seen):
        if ev.record["action"] == "UNFOLLOW_TEAM":
            last_unfollow[ev.record["team_id"]] = i
    result: dict[str, float] = {}
    for i, ev in enumerate(seen):
        team = ev.record["team_id"]
        if team is None or i <= last_unfollow.get(team, -1):
            continue
        action = ev.record["action"]
        weight = 5.0 if action == "FOLLOW_TEAM" else 0.0 if action == "UNFOLLOW_TEAM" else 1.0
        result[team] = result.get(team, 0.0) + weight * 2 ** (-(t - ev.time) / HALF_LIFE)
    # Between events every term decays by the same factor, so the order (and top_teams) can
    # change only at event ticks, which the candidate ticks include.
    return result


def _tie_cmp(a: tuple[str, float], b: tuple[str, float]) -> int:
    (team_a, aff_a), (team_b, aff_b) = a, b
    if abs(aff_a - aff_b) <= TIE_REL * max(aff_a, aff_b):
        return (team_a > team_b) - (team_a < team_b)
    return -1 if aff_a > aff_b else 1


def rank_teams(affinities: dict[str, float]) -> list[str]:
    """Teams with affinity > 0, highest first; affinities within 1e-9 relative are tied.

    The tie relation is not transitive (a~b, b~c, but not a~c); the docs do not say what then
    happens, so this takes whatever `sorted` does with the pairwise comparator.
    """
    positive = [(team, aff) for team, aff in sorted(affinities.items()) if aff > 0]
    return [team for team, _ in sorted(positive, key=functools.cmp_to_key(_tie_cmp))]


def _session(user: str, seen: list[Accepted]) -> Record:
    start = previous = seen[0].time
    count = 0
    for ev in seen:
        if ev.time - previous >= SESSION_GAP:  # a gap of exactly 30 min starts a new session
            start, count = ev.time, 0
        count += 1
        previous = ev.time
    return {
        "session_id": f"{user}:{start}",
        "session_events": count,
        "session_duration_s": (previous - start) // 1000,
    }


def _watching(last_5m: list[Accepted]) -> str | None:
    """Most interactions, then latest interaction (by event time), then smallest game_id."""
    counts: dict[str, int] = defaultdict(int)
    latest: dict[str, int] = {}
    for ev in last_5m:
        game = ev.record["game_id"]
        if game is not None:
            counts[game] += 1
            latest[game] = max(latest.get(game, ev.time), ev.time)
    if not counts:
        return None
    return min(counts, key=lambda g: (-counts[g], -latest[g], g))
