"""Per-user features (UserFeatures), second generation: running window counts.

The applied interactions of the last 24 h are three parallel lists in event-time order
(time, action class, game id); each window has a read position, the first entry still
inside it. Applying an event appends it and counts it in the hour's and the five
minutes' aggregates; a tick moves each position past the entries that left its window and
retracts them. Work per event is constant: it is appended once and passed once per
window, whatever the history holds. Semantics: docs/features.md.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from udfs.features.common import DAY, HOUR, MINUTE, Event, Record, Step
from udfs.features.user import (
    AFFINITY_HALF_LIFE_MS,
    RETENTION_MS,
    SESSION_GAP_MS,
    apply_team,
    top_teams,
)
from udfs.features.v2 import codec, runtime

NAME = "user"
VERSION = 1
# A user is evaluated only at the tick of an applied event (which is emitted by rule) or
# at a window exit: the first tick T >= e + w of an interaction e still inside window w at
# the previous evaluation T' (T' < T, both multiples of the tick, so T' < e + w). Nothing
# else was applied in between, so interactions_<w> at T is smaller than at T': every
# evaluation emits, and the last record need not be kept to compare (the oracle tests
# check this claim on every record).
EVERY_TICK_CHANGES = True
# Action classes kept per history entry: only these two are counted apart.
OTHER, VIDEO_START, ALERT_OPEN = 0, 1, 2
_CLASS = {"VIDEO_START": VIDEO_START, "ALERT_OPEN": ALERT_OPEN}
# Drop the history's prefix that left the 24 h window once it is this long and at least
# half of the lists (amortised O(1) per event).
_TRIM_AT = 64


@dataclass(slots=True)
class UserState:
    user_id: str
    last_tick: int | None = None
    cleanup_at: int | None = None
    closed_at: int | None = None  # always None: users are cleared, not closed
    last_record: Record | None = None
    pruned_hour: int = 0
    # History, event-time order. Entries before p24 have left every window.
    times: list[int] = field(default_factory=list)
    classes: bytearray = field(default_factory=bytearray)
    games: list[str | None] = field(default_factory=list)
    p1m: int = 0
    p5m: int = 0
    p1h: int = 0
    p24h: int = 0
    # Aggregates of the hour and of the five minutes.
    video_1h: int = 0
    alerts_1h: int = 0
    games_1h: dict[str, int] = field(default_factory=dict)
    games_5m: dict[str, int] = field(default_factory=dict)
    latest_5m: dict[str, int] = field(default_factory=dict)  # game -> its latest time
    follows: set[str] = field(default_factory=set)
    # team -> (affinity at ref_time, ref_time); decays by 2^(-dt / half-life) from there.
    affinity: dict[str, tuple[float, int]] = field(default_factory=dict)
    session_start: int = 0
    session_events: int = 0
    last_active: int = 0
    dirty: bool = True  # the body changed since it was last encoded
    # Derived, not encoded: recomputed when their inputs change (None: not known).
    top_cache: list[str] | None = None
    watching_cache: tuple[str | None] | None = None


def new_state(user_id: str) -> UserState:
    return UserState(user_id)


def apply(s: UserState, ev: Event) -> None:
    r = ev.record
    action, team, game, t = r["action"], r.get("team_id"), r.get("game_id"), ev.time
    cls = _CLASS.get(action, OTHER)
    if game is not None:
        game = sys.intern(game)  # one object per id: the encoding writes it once
        s.games_1h[game] = s.games_1h.get(game, 0) + 1
        s.games_5m[game] = s.games_5m.get(game, 0) + 1
        s.latest_5m[game] = t
        s.watching_cache = None
    s.times.append(t)
    s.classes.append(cls)
    s.games.append(game)
    s.dirty = True
    if cls == VIDEO_START:
        s.video_1h += 1
    elif cls == ALERT_OPEN:
        s.alerts_1h += 1
    if s.session_events == 0 or t - s.last_active >= SESSION_GAP_MS:
        s.session_start, s.session_events = t, 0
    s.session_events += 1
    s.last_active = t
    if team:
        s.top_cache = None
        apply_team(s.follows, s.affinity, action, team, t)


def advance(s: UserState, tick: int) -> None:
    """Move every window to (tick - w, tick], retracting what left it."""
    times, n = s.times, len(s.times)
    i = s.p1m
    cut = tick - MINUTE
    while i < n and times[i] <= cut:
        i += 1
    s.p1m = i
    i = s.p5m
    cut = tick - 5 * MINUTE
    games, g5, latest = s.games, s.games_5m, s.latest_5m
    while i < n and times[i] <= cut:
        g = games[i]
        if g is not None:
            if g5[g] == 1:
                del g5[g], latest[g]
            else:
                g5[g] -= 1
            s.watching_cache = None
        i += 1
    s.p5m = i
    i = s.p1h
    cut = tick - HOUR
    classes, g1 = s.classes, s.games_1h
    while i < n and times[i] <= cut:
        c = classes[i]
        if c == VIDEO_START:
            s.video_1h -= 1
        elif c == ALERT_OPEN:
            s.alerts_1h -= 1
        g = games[i]
        if g is not None:
            runtime.decrement(g1, g)
        i += 1
    s.p1h = i
    i = s.p24h
    cut = tick - DAY
    while i < n and times[i] <= cut:
        i += 1
    s.p24h = i
    if i and (i == n or (i >= _TRIM_AT and 2 * i >= n)):
        # All of it (an idle user keeps no history) or a long prefix (amortised O(1)).
        del s.times[:i], s.classes[:i], s.games[:i]
        s.p1m, s.p5m, s.p1h, s.p24h = s.p1m - i, s.p5m - i, s.p1h - i, 0
        s.dirty = True


def next_change(s: UserState, tick_ms: int) -> int | None:
    """The first tick at which an applied interaction leaves a window."""
    times, n = s.times, len(s.times)
    if s.p24h >= n:
        return None
    x = times[s.p24h] + DAY  # the positions are ordered: p24h <= p1h <= p5m <= p1m
    if s.p1h < n:
        x = min(x, times[s.p1h] + HOUR)
        if s.p5m < n:
            x = min(x, times[s.p5m] + 5 * MINUTE)
            if s.p1m < n:
                x = min(x, times[s.p1m] + MINUTE)
    return -(-x // tick_ms) * tick_ms


def cleanup_time(s: UserState) -> int:
    return s.last_active + RETENTION_MS


def clear(
    s: UserState, tick: int, pending: list[Event], seen: MutableMapping[str, int]
) -> Step[UserState]:
    """30 days without activity: tombstone, and forget the user. Events after the cleanup
    already waiting start a new user (keeping the lateness bound)."""
    if not pending:
        return Step(None, [(tick, None)], [], [])
    keep = {e.dedup_key for e in pending}
    for k in [k for k in seen if k not in keep]:
        del seen[k]
    fresh = UserState(s.user_id, last_tick=tick, pruned_hour=s.pruned_hour)
    return Step(fresh, [(tick, None)], [], [])


def watching(s: UserState) -> str | None:
    """The game with the most interactions in the last 5 min; ties: the most recent, then id."""
    if s.watching_cache is not None:
        return s.watching_cache[0]
    g5 = s.games_5m
    if not g5:
        w = None
    elif len(g5) == 1:
        w = next(iter(g5))
    else:
        latest = s.latest_5m
        w = min(g5, key=lambda g: (-g5[g], -latest[g], g))
    s.watching_cache = (w,)
    return w


# Relative differences between affinities that decide the ranking the same way at every
# tick: a uniform decay scales every affinity alike, and the rounding of the scaling is
# about 1e-16, so a difference below ROBUST_TIE stays a tie (TIE_TOLERANCE is 1e-9) and one
# above ROBUST_GAP stays a gap.
ROBUST_TIE, ROBUST_GAP, ROBUST_TEAMS = 1e-12, 1e-6, 8


def ranking(s: UserState, tick: int) -> list[str]:
    """top_teams at `tick`. Affinities all decay at the same rate, so the ranking changes
    only when an interaction with a team is applied: it is reused until then, unless two
    affinities are so close that rounding could decide it (then computed at every tick)."""
    if s.top_cache is not None:
        return s.top_cache
    if not s.affinity:
        s.top_cache = []
        return s.top_cache
    values = {  # v * _decay(tick - ref), inlined
        team: v * 2.0 ** ((ref - tick) / AFFINITY_HALF_LIFE_MS)
        for team, (v, ref) in s.affinity.items()
    }
    top = top_teams(values)
    if _robust([a for a in values.values() if a > 0]):
        s.top_cache = top
    return top


def _robust(values: list[float]) -> bool:
    if len(values) > ROBUST_TEAMS:
        return False
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            rel = abs(a - b) / max(a, b)
            if ROBUST_TIE < rel < ROBUST_GAP:
                return False
    return True


def evaluate(s: UserState, tick: int) -> Record:
    """The UserFeatures record at `tick`, without feature_time (after advance)."""
    n = len(s.times)
    return {
        "user_id": s.user_id,
        "interactions_1m": n - s.p1m,
        "interactions_5m": n - s.p5m,
        "interactions_1h": n - s.p1h,
        "interactions_24h": n - s.p24h,
        "video_starts_1h": s.video_1h,
        "alerts_opened_1h": s.alerts_1h,
        "distinct_games_1h": len(s.games_1h),
        "followed_teams": sorted(s.follows),
        "top_teams": ranking(s, tick),
        "session_id": f"{s.user_id}:{s.session_start}",
        "session_events": s.session_events,
        "session_duration_s": (s.last_active - s.session_start) // 1000,
        "watching_game_id": watching(s),
        "last_active_at": s.last_active,
    }


# The encoded layout, version 1 (docs/architecture.md, "State layout"). A user's state is
# stored in two parts: its last evaluated tick (a long of its own, written at every
# evaluation) and the body below, written only when an event is applied or the history is
# trimmed (`dirty`). Window positions and counts are not stored: decode() rebuilds them
# from the history and the last tick, as the ticks did. So a window exit — most of a
# user's evaluations — writes one long.


def _add_counts(s: UserState, start: int) -> None:
    """Count the history from `start` on as applied (the counting half of apply())."""
    g1, g5, latest, classes = s.games_1h, s.games_5m, s.latest_5m, s.classes
    for i in range(start, len(s.times)):
        g = s.games[i]
        if g is not None:
            g1[g] = g1.get(g, 0) + 1
            g5[g] = g5.get(g, 0) + 1
            latest[g] = s.times[i]
        c = classes[i]
        if c == VIDEO_START:
            s.video_1h += 1
        elif c == ALERT_OPEN:
            s.alerts_1h += 1


def encode(s: UserState) -> bytes | None:
    """The body, or None when it has not changed since the last encode()."""
    if not s.dirty:
        return None
    s.dirty = False
    return codec.dumps(
        NAME,
        VERSION,
        (
            s.cleanup_at,
            s.pruned_hour,
            array("q", s.times).tobytes(),
            bytes(s.classes),
            s.games,
            s.follows,
            s.affinity,
            (s.session_start, s.session_events, s.last_active),
        ),
    )


def decode(user_id: str, data: bytes, last_tick: int | None) -> UserState:
    _, f = codec.loads(NAME, (VERSION,), data)
    (cleanup_at, pruned, times, classes, games, follows, affinity, session) = f
    t = array("q")
    t.frombytes(times)
    s = UserState(
        user_id,
        last_tick=last_tick,
        cleanup_at=cleanup_at,
        pruned_hour=pruned,
        times=t.tolist(),
        classes=bytearray(classes),
        games=[None if g is None else sys.intern(g) for g in games],
        follows=follows,
        affinity=affinity,
        session_start=session[0],
        session_events=session[1],
        last_active=session[2],
    )
    _add_counts(s, 0)
    if last_tick is not None:
        advance(s, last_tick)
    s.dirty = False
    return s


def _fields(s: UserState) -> dict[str, Any]:
    """For tests: the state as plain values (what encode/decode must preserve)."""
    base = s.p24h
    return {
        "last_tick": s.last_tick,
        "cleanup_at": s.cleanup_at,
        "history": list(zip(s.times[base:], s.classes[base:], s.games[base:], strict=True)),
        "positions": (s.p1m - base, s.p5m - base, s.p1h - base),
        "counts": (s.video_1h, s.alerts_1h, s.games_1h, s.games_5m, s.latest_5m),
        "follows": s.follows,
        "affinity": s.affinity,
        "session": (s.session_start, s.session_events, s.last_active),
    }
