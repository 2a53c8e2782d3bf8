"""Per-game features (GameFeatures, key game_id) from game events and interactions.

Same shape as udfs.features.user: offer() on arrival, on_tick() at each due tick.
Semantics: docs/features.md; the excitement formula is in udfs.features.excitement.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from udfs.features.common import (
    DAY,
    HOUR,
    MINUTE,
    Event,
    KeyClock,
    Record,
    Rejected,
    Step,
    by_fields,
    tick_of,
    window_exits,
)
from udfs.features.excitement import excitement

INTERACTION_WINDOWS = (MINUTE, 5 * MINUTE, 10 * MINUTE)
SCORING_WINDOW = 5 * MINUTE
AFTER_GAME_END = 6 * HOUR
AFTER_LAST_EVENT = 10 * MINUTE
WITHOUT_GAME_END = DAY


@dataclass(slots=True)
class Play:
    """One event_id at its latest applied revision."""

    sequence: int
    revision: int
    anchor: int  # event time of its first applied revision (revision 0 when accepted)
    record: dict[str, Any]

    def __reduce__(self) -> tuple[Any, ...]:
        return by_fields(self)


@dataclass(slots=True)
class GameState:
    game_id: str
    clock: KeyClock = field(default_factory=KeyClock)
    plays: dict[str, Play] = field(default_factory=dict)
    current: dict[str, Any] | None = None  # the game event with the largest (sequence, revision)
    game_end: tuple[int, int, int] | None = None  # (sequence, revision, event time)
    lead_changes: int = 0
    ties: int = 0
    # Applied interactions of the last 10 min: (time, user_id).
    viewers: list[tuple[int, str]] = field(default_factory=list)
    latest_event: int = 0

    def __reduce__(self) -> tuple[Any, ...]:
        return by_fields(self)


_time, _user = itemgetter(0), itemgetter(1)  # of a `viewers` entry


def new_state(game_id: str) -> GameState:
    return GameState(game_id)


def on_tick(state: GameState, tick: int, tick_ms: int) -> Step[GameState]:
    """Evaluate at `tick`; a cleared game stays as a closed marker (see docs/features.md)."""
    clock = state.clock
    if clock.closed_at is not None or not clock.take_agenda(tick):
        return Step(state, [], [], [], changed=False)
    applied = clock.due(tick)
    if clock.cleanup_at == tick and not applied:
        # Events after the cleanup tick that already wait were accepted into a game that
        # is now closed: they become LATE like any later event for it.
        turned_away = [(e, Rejected("LATE", f"game closed at {tick}")) for e in clock.pending]
        for k in list(clock.seen):
            del clock.seen[k]
        closed = KeyClock(closed_at=tick, last_tick=tick, seen=clock.seen)
        return Step(GameState(state.game_id, closed), [(tick, None)], [], turned_away)
    timers: list[int] = []
    replay = False
    for ev in applied:
        state.latest_event = max(state.latest_event, ev.time)
        if ev.kind == "game":
            replay |= _apply_game_event(state, ev)
            if ev.record["event_type"] == "SCORE":
                anchor = state.plays[ev.record["event_id"]].anchor
                timers += clock.schedule([tick_of(anchor + SCORING_WINDOW, tick_ms)])
        else:
            state.viewers.append((ev.time, ev.record["user_id"]))
            timers += clock.schedule(window_exits(ev.time, INTERACTION_WINDOWS, tick_ms))
    if replay:
        state.lead_changes, state.ties = lead_changes_and_ties(state.plays.values())
    if applied:
        timers += clock.set_cleanup(tick_of(_cleanup_time(state), tick_ms))
    drop = bisect.bisect_right(state.viewers, tick - 10 * MINUTE, key=_time)
    del state.viewers[:drop]
    clock.prune_seen(tick)
    record = evaluate(state, tick)
    emit = clock.emit_rule(tick, tick_ms, applied, record)
    changed = bool(applied) or drop > 0
    return Step(state, [(tick, record)] if emit else [], timers, [], changed)


def _apply_game_event(state: GameState, ev: Event) -> bool:
    """Apply one game event; True if the corrected play sequence changed."""
    r = dict(ev.record)
    seq, rev = int(r["sequence"]), int(r["revision"])
    cur = state.current
    if cur is None or (seq, rev) > (cur["sequence"], cur["revision"]):
        state.current = r
    if r["event_type"] == "GAME_END" and (
        state.game_end is None or (seq, rev) > state.game_end[:2]
    ):
        state.game_end = (seq, rev, ev.time)
    play = state.plays.get(r["event_id"])
    if play is not None and rev <= play.revision:
        return False
    anchor = ev.time if play is None else play.anchor
    state.plays[r["event_id"]] = Play(seq, rev, anchor, r)
    return True


def _cleanup_time(state: GameState) -> int:
    if state.game_end is None:
        return state.latest_event + WITHOUT_GAME_END
    return max(state.game_end[2] + AFTER_GAME_END, state.latest_event + AFTER_LAST_EVENT)


def lead_changes_and_ties(plays: Any) -> tuple[int, int]:
    """Walk the corrected play sequence from a level score (docs/features.md)."""
    ordered = sorted(plays, key=lambda p: p.sequence)
    return walk_scores((int(p.record["home_score"]), int(p.record["away_score"])) for p in ordered)


def walk_scores(scores: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """(lead changes, ties) of a sequence of (home, away) scores, from a level score."""
    changes = ties = 0
    leader_before = 0
    level = True
    for home, away in scores:
        diff = home - away
        leader = (diff > 0) - (diff < 0)
        if leader != 0:
            if leader_before != 0 and leader != leader_before:
                changes += 1
            leader_before = leader
        if leader == 0 and not level:
            ties += 1
        level = leader == 0
    return changes, ties


def evaluate(state: GameState, tick: int) -> Record:
    cur = state.current or {}
    home_pts = away_pts = plays_5m = 0
    for p in state.plays.values():
        r = p.record
        if r["event_type"] != "SCORE" or not r["points"] or not tick - SCORING_WINDOW < p.anchor:
            continue
        plays_5m += 1
        if r.get("team_id") == r["home_team_id"]:
            home_pts += r["points"]
        elif r.get("team_id") == r["away_team_id"]:
            away_pts += r["points"]
    # A live game's viewers hold 10 min of its interactions (thousands): bisect them in
    # place, and collect the distinct users in C (map + set).
    recent = state.viewers
    i5 = bisect.bisect_right(recent, tick - 5 * MINUTE, key=_time)
    i1 = bisect.bisect_right(recent, tick - MINUTE, key=_time)
    viewers_5m = len(set(map(_user, recent[i5:])))
    before = len(set(map(_user, recent[:i5])))
    status = "FINAL" if state.game_end is not None else ("LIVE" if cur else "SCHEDULED")
    home, away = int(cur.get("home_score", 0)), int(cur.get("away_score", 0))
    record: Record = {
        "game_id": state.game_id,
        "league": cur.get("league"),
        "home_team_id": cur.get("home_team_id"),
        "away_team_id": cur.get("away_team_id"),
        "status": status,
        "period": int(cur.get("period", 0)),
        "clock_seconds_remaining": int(cur.get("clock_seconds_remaining", 0)),
        "home_score": home,
        "away_score": away,
        "score_diff": home - away,
        "lead_changes": state.lead_changes,
        "ties": state.ties,
        "home_points_5m": home_pts,
        "away_points_5m": away_pts,
        "scoring_plays_5m": plays_5m,
        "viewers_5m": viewers_5m,
        "viewer_trend": viewers_5m / max(1, before),
        "interactions_1m": len(recent) - i1,
        "excitement": 0.0,
        "feature_time": tick,
    }
    record["excitement"] = excitement(record)
    return record
