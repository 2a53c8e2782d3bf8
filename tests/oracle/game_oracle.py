"""Brute-force GameFeatures: every record recomputed from the raw event list at each tick."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable

from tests.oracle.model import (
    HOUR,
    MIN,
    Accepted,
    Output,
    Record,
    ceil_tick,
    check_kinds,
    emit_ticks,
)

# Every window length the game family uses: 1 min counts, 5 min plays and viewers, and the
# 10 min edge of the viewer-trend baseline (T - 10 min, T - 5 min]. The 5 min play window is
# anchored at a revision's own event time, so `e + 5 min` over all events covers it too.
WINDOW_LENGTHS = (MIN, 5 * MIN, 10 * MIN)
AFTER_END = 6 * HOUR
AFTER_LAST = 10 * MIN
WITHOUT_END = 24 * HOUR
# league -> (periods, period_seconds, margin), the excitement table of docs/features.md.
LEAGUES = {
    "NBA": (4, 720, 15),
    "NFL": (4, 900, 14),
    "NHL": (3, 1200, 3),
    "EPL": (2, 2700, 2),
    "MLS": (2, 2700, 2),
}
OTHER_LEAGUE = (4, 900, 10)


def game_features(events: Iterable[Accepted], tick_ms: int = 1000) -> list[Output]:
    """Every GameFeatures record and tombstone a bounded run emits, sorted by (key, time)."""
    by_game: dict[str, list[Accepted]] = defaultdict(list)
    for ev in check_kinds(events):
        game = ev.record["game_id"]
        if ev.kind == "game" or game is not None:  # interactions without a game are ignored
            by_game[game].append(ev)
    out: list[Output] = []
    for game in sorted(by_game):
        out.extend(_one_game(game, sorted(by_game[game], key=Accepted.order), tick_ms))
    return out


def _revision_key(rec: Record) -> tuple[int, int]:
    return (rec["sequence"], rec["revision"])


def cleanup_tick(events: list[Accepted], tick: int) -> int:
    """The tick C at which a game holding exactly `events` is cleared."""
    latest = max(ev.time for ev in events)
    ends = [ev for ev in events if ev.kind == "game" and ev.record["event_type"] == "GAME_END"]
    if not ends:
        return ceil_tick(latest + WITHOUT_END, tick)
    end = max(ends, key=lambda ev: _revision_key(ev.record))
    return ceil_tick(max(end.time + AFTER_END, latest + AFTER_LAST), tick)


def _one_game(game: str, events: list[Accepted], tick: int) -> list[Output]:
    for i in range(1, len(events)):
        # C of a prefix is >= its latest event + 10 min, so only a longer gap can close it.
        gap = events[i].time - events[i - 1].time
        if gap > AFTER_LAST and events[i].time > cleanup_tick(events[:i], tick):
            raise ValueError(f"game {game}: event at {events[i].time} after the game closed")
    times = [ev.time for ev in events]

    def record_at(t: int) -> Record | None:
        return game_record(game, events[: bisect_right(times, t)], t)

    return emit_ticks(game, events, WINDOW_LENGTHS, cleanup_tick(events, tick), record_at, tick)


def game_record(game: str, seen: list[Accepted], t: int) -> Record | None:
    """The record at tick t from `seen` = the game's events <= t (no feature_time)."""
    if not seen:
        return None
    plays = [ev.record for ev in seen if ev.kind == "game"]
    views = [ev for ev in seen if ev.kind == "interaction"]
    current = max(plays, key=_revision_key, default=None)
    rec: Record = {"game_id": game}
    for field in ("league", "home_team_id", "away_team_id"):
        rec[field] = current[field] if current else None
    if any(p["event_type"] == "GAME_END" for p in plays):
        rec["status"] = "FINAL"
    else:
        rec["status"] = "LIVE" if plays else "SCHEDULED"
    for field in ("period", "clock_seconds_remaining", "home_score", "away_score"):
        rec[field] = current[field] if current else 0
    rec["score_diff"] = rec["home_score"] - rec["away_score"]
    rec["lead_changes"], rec["ties"] = lead_changes_and_ties(plays)
    rec.update(_scoring_5m(plays, t))
    # `views` is in time order and holds only events <= t, so (t - a, t - b] is a slice.
    times = [ev.time for ev in views]

    def users(a: int, b: int) -> set[str]:
        window = views[bisect_right(times, t - a) : bisect_right(times, t - b)]
        return {ev.record["user_id"] for ev in window}

    viewers, before = users(5 * MIN, 0), users(10 * MIN, 5 * MIN)
    rec["viewers_5m"] = len(viewers)
    rec["viewer_trend"] = len(viewers) / max(1, len(before))
    rec["interactions_1m"] = len(times) - bisect_right(times, t - MIN)
    rec["excitement"] = excitement(
        rec["status"],
        rec["league"],
        rec["period"],
        rec["clock_seconds_remaining"],
        rec["score_diff"],
        rec["lead_changes"],
        rec["viewer_trend"],
    )
    return rec


def _latest_revisions(plays: list[Record]) -> dict[str, list[Record]]:
    """event_id -> its revisions (all <= T), lowest revision first."""
    by_id: dict[str, list[Record]] = defaultdict(list)
    for p in plays:
        by_id[p["event_id"]].append(p)
    return {eid: sorted(revs, key=lambda p: p["revision"]) for eid, revs in by_id.items()}


def lead_changes_and_ties(plays: list[Record]) -> tuple[int, int]:
    """Walks each event_id at its highest revision, in sequence order, from a level score."""
    kept = sorted((revs[-1] for revs in _latest_revisions(plays).values()), key=_revision_key)
    changes = ties = 0
    leader = 0  # sign(home - away) of the previous event; the walk starts level
    last_nonzero = 0  # previous non-zero leader; 0 until the first one
    for p in kept:
        now = (p["home_score"] > p["away_score"]) - (p["home_score"] < p["away_score"])
        if now != 0:
            if last_nonzero not in (0, now):
                changes += 1
            last_nonzero = now
        elif leader != 0:
            ties += 1
        leader = now
    return changes, ties


def _scoring_5m(plays: list[Record], t: int) -> dict[str, int]:
    """SCORE plays whose anchor (lowest revision <= T, i.e. rev 0 if seen) is in 5 min."""
    home = away = count = 0
    for revs in _latest_revisions(plays).values():
        anchor, latest = revs[0]["event_time"], revs[-1]
        if latest["event_type"] != "SCORE" or latest["points"] <= 0 or anchor <= t - 5 * MIN:
            continue
        count += 1
        if latest["team_id"] == latest["home_team_id"]:
            home += latest["points"]
        elif latest["team_id"] == latest["away_team_id"]:
            away += latest["points"]
    return {"home_points_5m": home, "away_points_5m": away, "scoring_plays_5m": count}


def excitement(
    status: str,
    league: str | None,
    period: int,
    clock_seconds_remaining: int,
    score_diff: int,
    lead_changes: int,
    viewer_trend: float,
) -> float:
    """The excitement formula of docs/features.md, term for term in the documented order."""
    if status != "LIVE":
        return 0.0
    periods, period_seconds, margin = LEAGUES.get(league or "", OTHER_LEAGUE)
    closeness = max(0.0, 1 - abs(score_diff) / margin)
    progress = 0.0
    if period != 0:
        # Written as in the docs: (period - 1) whole periods plus the elapsed part of this one.
        elapsed = period - 1 + 1 - clock_seconds_remaining / period_seconds
        progress = min(1.0, max(0.0, elapsed / periods))
    value = (
        0.4 * closeness * (0.5 + 0.5 * progress)
        + 0.2 * progress
        + 0.2 * min(1.0, lead_changes / 10)
        + 0.2 * min(1.0, max(0.0, viewer_trend - 1) / 2)
    )
    return value
