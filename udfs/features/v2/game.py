"""Per-game features (GameFeatures), second generation: running viewer counts.

The applied interactions of the last 10 min are two parallel lists (time, user) with a
read position per window (1, 5 and 10 min); each user's interactions are counted in the
five minutes and in the five before them, so the distinct viewers of either are the size
of a dict, kept up to date as entries cross 5 and 10 min. Scoring plays are found from a
short list ordered by their anchor time, not by walking every play. Plays change only
with game events (a few thousand a day): their encoding is cached and reused until one
arrives. Semantics: docs/features.md.
"""

from __future__ import annotations

import bisect
import sys
from array import array
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple

from udfs.features.common import MINUTE, Event, Record, Rejected, Step, tick_of
from udfs.features.excitement import excitement
from udfs.features.game import (
    AFTER_GAME_END,
    AFTER_LAST_EVENT,
    SCORING_WINDOW,
    WITHOUT_GAME_END,
    walk_scores,
)
from udfs.features.v2 import codec, runtime

VIEWER_HISTORY = 10 * MINUTE  # viewers_5m and the 5 min before it, for viewer_trend
NAME = "game"
VERSION = 1
EVERY_TICK_CHANGES = False  # e.g. a viewer leaving the 5 min who is still in it
_TRIM_AT = 256
_sequence = attrgetter("sequence")


class Play(NamedTuple):
    """What a play keeps of its latest revision: what lead changes, ties and the scoring
    window read (not the whole record). Encoded as a plain tuple of these fields."""

    sequence: int
    revision: int
    anchor: int  # event time of its first applied revision
    event_type: str
    points: int
    team_id: str | None
    home_team_id: str | None
    away_team_id: str | None
    home_score: int
    away_score: int


# The latest game event by (sequence, revision): what the record shows of it.
CURRENT_FIELDS = (
    "sequence",
    "revision",
    "league",
    "home_team_id",
    "away_team_id",
    "period",
    "clock_seconds_remaining",
    "home_score",
    "away_score",
)


@dataclass(slots=True)
class GameState:
    game_id: str
    last_tick: int | None = None
    cleanup_at: int | None = None
    closed_at: int | None = None
    last_record: Record | None = None
    pruned_hour: int = 0
    plays: dict[str, Play] = field(default_factory=dict)
    # (anchor, event_id) of every play that had a SCORE revision, anchor order; entries
    # older than the scoring window are dropped.
    scoring: list[tuple[int, str]] = field(default_factory=list)
    current: dict[str, Any] | None = None
    game_end: tuple[int, int, int] | None = None  # (sequence, revision, event time)
    lead_changes: int = 0
    ties: int = 0
    latest_event: int = 0
    # Interactions of the last 10 min, event-time order.
    times: list[int] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    p1m: int = 0
    p5m: int = 0
    p10m: int = 0
    in_5m: dict[str, int] = field(default_factory=dict)  # user -> interactions in (T-5m, T]
    in_10m: dict[str, int] = field(default_factory=dict)  # in (T-10m, T-5m]
    plays_blob: bytes | None = None  # the encoded plays, until a game event changes them
    tiled: int = 0  # interactions before this position are in tiles already


def new_state(game_id: str) -> GameState:
    return GameState(game_id)


def apply(s: GameState, ev: Event) -> None:
    s.latest_event = max(s.latest_event, ev.time)
    r = ev.record
    if ev.kind != "game":
        user = sys.intern(r["user_id"])
        s.times.append(ev.time)
        s.users.append(user)
        s.in_5m[user] = s.in_5m.get(user, 0) + 1
        return
    seq, rev = int(r["sequence"]), int(r["revision"])
    cur = s.current
    if cur is None or (seq, rev) > (cur["sequence"], cur["revision"]):
        s.current = {f: r.get(f) for f in CURRENT_FIELDS}
    if r["event_type"] == "GAME_END" and (s.game_end is None or (seq, rev) > s.game_end[:2]):
        s.game_end = (seq, rev, ev.time)
    eid = r["event_id"]
    play = s.plays.get(eid)
    if play is not None and rev <= play.revision:
        return
    anchor = ev.time if play is None else play.anchor
    s.plays[eid] = play_of(r, seq, rev, anchor)
    s.plays_blob = None
    if r["event_type"] == "SCORE" and (anchor, eid) not in s.scoring:
        bisect.insort(s.scoring, (anchor, eid))
    s.lead_changes, s.ties = lead_changes_and_ties(s.plays.values())


def play_of(r: Mapping[str, Any], sequence: int, revision: int, anchor: int) -> Play:
    """What a play keeps of game event record `r` (its latest revision)."""
    return Play(
        sequence,
        revision,
        anchor,
        r["event_type"],
        int(r["points"]),
        r.get("team_id"),
        r.get("home_team_id"),
        r.get("away_team_id"),
        int(r["home_score"]),
        int(r["away_score"]),
    )


def lead_changes_and_ties(plays: Iterable[Play]) -> tuple[int, int]:
    """Walk the corrected play sequence from a level score (docs/features.md)."""
    ordered = sorted(plays, key=_sequence)  # stable: ties keep first-applied order
    return walk_scores((p.home_score, p.away_score) for p in ordered)


def advance(s: GameState, tick: int) -> None:
    """Move every window to (tick - w, tick], retracting what left it."""
    times, users, n = s.times, s.users, len(s.times)
    i = s.p1m
    cut = tick - MINUTE
    while i < n and times[i] <= cut:
        i += 1
    s.p1m = i
    i = s.p5m
    cut = tick - 5 * MINUTE
    in5, in10 = s.in_5m, s.in_10m
    while i < n and times[i] <= cut:
        u = users[i]
        runtime.decrement(in5, u)
        in10[u] = in10.get(u, 0) + 1
        i += 1
    s.p5m = i
    i = s.p10m
    cut = tick - VIEWER_HISTORY
    while i < n and times[i] <= cut:
        runtime.decrement(in10, users[i])
        i += 1
    s.p10m = i
    if i >= _TRIM_AT and 2 * i >= n:
        del s.times[:i], s.users[:i]
        s.p1m, s.p5m, s.p10m, s.tiled = s.p1m - i, s.p5m - i, 0, s.tiled - i
    drop = bisect.bisect_right(s.scoring, (tick - SCORING_WINDOW, "\U0010ffff"))
    if drop:
        del s.scoring[:drop]


def next_change(s: GameState, tick_ms: int) -> int | None:
    times, n = s.times, len(s.times)
    due = None
    for pos, w in ((s.p1m, MINUTE), (s.p5m, 5 * MINUTE), (s.p10m, VIEWER_HISTORY)):
        if pos < n:
            t = tick_of(times[pos] + w, tick_ms)
            if due is None or t < due:
                due = t
    if s.scoring:
        t = tick_of(s.scoring[0][0] + SCORING_WINDOW, tick_ms)
        if due is None or t < due:
            due = t
    return due


def cleanup_time(s: GameState) -> int:
    if s.game_end is None:
        return s.latest_event + WITHOUT_GAME_END
    return max(s.game_end[2] + AFTER_GAME_END, s.latest_event + AFTER_LAST_EVENT)


def clear(
    s: GameState, tick: int, pending: list[Event], seen: MutableMapping[str, int]
) -> Step[GameState]:
    """Cleared: a tombstone, and the game stays as a closed marker. Events already waiting
    were accepted into a game that is now closed: they become LATE like any later one."""
    turned_away = [(e, Rejected("LATE", f"game closed at {tick}")) for e in pending]
    pending.clear()
    for k in list(seen):
        del seen[k]
    closed = GameState(s.game_id, last_tick=tick, closed_at=tick)
    return Step(closed, [(tick, None)], [], turned_away)


def evaluate(s: GameState, tick: int) -> Record:
    """The GameFeatures record at `tick`, without feature_time (after advance)."""
    home_pts = away_pts = plays_5m = 0
    plays = s.plays
    for _, eid in s.scoring:  # advance left only plays anchored inside the window
        p = plays[eid]
        if p.event_type != "SCORE" or not p.points:
            continue
        plays_5m += 1
        if p.team_id == p.home_team_id:
            home_pts += p.points
        elif p.team_id == p.away_team_id:
            away_pts += p.points
    cur = s.current or {}
    viewers_5m = len(s.in_5m)
    status = "FINAL" if s.game_end is not None else ("LIVE" if cur else "SCHEDULED")
    home, away = int(cur.get("home_score") or 0), int(cur.get("away_score") or 0)
    record: Record = {
        "game_id": s.game_id,
        "league": cur.get("league"),
        "home_team_id": cur.get("home_team_id"),
        "away_team_id": cur.get("away_team_id"),
        "status": status,
        "period": int(cur.get("period") or 0),
        "clock_seconds_remaining": int(cur.get("clock_seconds_remaining") or 0),
        "home_score": home,
        "away_score": away,
        "score_diff": home - away,
        "lead_changes": s.lead_changes,
        "ties": s.ties,
        "home_points_5m": home_pts,
        "away_points_5m": away_pts,
        "scoring_plays_5m": plays_5m,
        "viewers_5m": viewers_5m,
        "viewer_trend": viewers_5m / max(1, len(s.in_10m)),
        "interactions_1m": len(s.times) - s.p1m,
        "excitement": 0.0,
    }
    record["excitement"] = excitement(record)
    return record


_RECORD_FIELDS = (
    "league",
    "home_team_id",
    "away_team_id",
    "status",
    "period",
    "clock_seconds_remaining",
    "home_score",
    "away_score",
    "score_diff",
    "lead_changes",
    "ties",
    "home_points_5m",
    "away_points_5m",
    "scoring_plays_5m",
    "viewers_5m",
    "viewer_trend",
    "interactions_1m",
    "excitement",
)


def encode(s: GameState) -> bytes:
    """The game's core: everything but its interactions, which go in tiles (`take_tile`).
    Small and of fixed size apart from the plays, whose encoding is reused until a game
    event changes them."""
    if s.plays_blob is None:
        plays = {eid: tuple(p) for eid, p in s.plays.items()}
        s.plays_blob = codec.dumps(NAME + ".plays", VERSION, (plays,))
    last = s.last_record
    return codec.dumps(
        NAME,
        VERSION,
        (
            s.last_tick,
            s.cleanup_at,
            s.closed_at,
            s.pruned_hour,
            None if last is None else tuple(last[f] for f in _RECORD_FIELDS),
            s.plays_blob,
            s.scoring,
            None if s.current is None else tuple(s.current[f] for f in CURRENT_FIELDS),
            s.game_end,
            (s.lead_changes, s.ties, s.latest_event),
        ),
    )


def take_tile(s: GameState) -> bytes | None:
    """The interactions applied since the last call, encoded: the tile of the tick just
    evaluated (each of its entries is in (tick - 1 s, tick]). A tile is written once and
    is needed until its tick is 10 min behind the game's last tick (`tile_expired`)."""
    start = s.tiled
    s.tiled = len(s.times)
    if start == s.tiled:
        return None
    return codec.dumps(
        NAME + ".tile", VERSION, (array("q", s.times[start:]).tobytes(), s.users[start:])
    )


def tile_expired(tile_tick: int, last_tick: int) -> bool:
    return tile_tick <= last_tick - VIEWER_HISTORY


def decode(
    game_id: str, data: bytes, last_tick: int | None, tiles: Iterable[bytes] = ()
) -> GameState:
    """The state from its core and its unexpired tiles, in tick order. The viewer counts
    are rebuilt from the tiles, so they cost nothing to store. (A game's last tick is also
    in its core, which changes at every evaluation anyway.)"""
    _, f = codec.loads(NAME, (VERSION,), data)
    (core_tick, cleanup_at, closed_at, pruned, last, plays_blob, scoring, current) = f[:8]
    if core_tick != last_tick:
        raise codec.StateFormatError(
            f"game {game_id}: core written at tick {core_tick}, last tick {last_tick}"
        )
    (game_end, counts) = f[8:]
    _, (plays,) = codec.loads(NAME + ".plays", (VERSION,), plays_blob)
    s = GameState(
        game_id,
        last_tick=last_tick,
        cleanup_at=cleanup_at,
        closed_at=closed_at,
        last_record=None
        if last is None
        else {"game_id": game_id, **dict(zip(_RECORD_FIELDS, last, strict=True))},
        pruned_hour=pruned,
        plays={eid: Play(*p) for eid, p in plays.items()},
        scoring=scoring,
        current=None if current is None else dict(zip(CURRENT_FIELDS, current, strict=True)),
        game_end=game_end,
        lead_changes=counts[0],
        ties=counts[1],
        latest_event=counts[2],
        plays_blob=plays_blob,
    )
    in5 = s.in_5m
    for tile in tiles:
        _, (times, users) = codec.loads(NAME + ".tile", (VERSION,), tile)
        t = array("q")
        t.frombytes(times)
        s.times.extend(t)
        for u in users:
            u = sys.intern(u)
            s.users.append(u)
            in5[u] = in5.get(u, 0) + 1
    s.tiled = len(s.times)
    if last_tick is not None:
        advance(s, last_tick)  # retracts what left the windows since, as the ticks did
    return s
