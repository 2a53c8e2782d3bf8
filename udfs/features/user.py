"""Per-user features (UserFeatures, key user_id) as a state machine.

offer(state, event, watermark) decides LATE / DUPLICATE / accepted and returns timer ticks;
on_tick(state, tick) applies the due events in event-time order, evaluates the record at
the tick and returns what to emit. Semantics: docs/features.md.
"""

from __future__ import annotations

import bisect
import math
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
    Step,
    by_fields,
    tick_of,
    window_exits,
)

WINDOWS = {
    "interactions_1m": MINUTE,
    "interactions_5m": 5 * MINUTE,
    "interactions_1h": HOUR,
    "interactions_24h": DAY,
}
SESSION_GAP_MS = 30 * MINUTE
AFFINITY_HALF_LIFE_MS = 7 * DAY
FOLLOW_WEIGHT = 5.0
RETENTION_MS = 30 * DAY
TIE_TOLERANCE = 1e-9
TOP_N = 3
# Fields added after release 1 (UserFeatures version 2): savepoints may hold records without.
ADDED_FIELDS = ("alerts_opened_1h",)


@dataclass(slots=True)
class UserState:
    user_id: str
    clock: KeyClock = field(default_factory=KeyClock)
    # Applied interactions of the last 24 h, in application order: (time, action, game_id).
    recent: list[tuple[int, str, str | None]] = field(default_factory=list)
    follows: set[str] = field(default_factory=set)
    # team -> (affinity at ref_time, ref_time); decays by 2^(-dt / half-life) from there.
    affinity: dict[str, tuple[float, int]] = field(default_factory=dict)
    session_start: int = 0
    session_events: int = 0
    last_active: int = 0

    def __reduce__(self) -> tuple[Any, ...]:
        return by_fields(self)


_time = itemgetter(0)  # of a `recent` entry


def new_state(user_id: str) -> UserState:
    return UserState(user_id)


def on_tick(state: UserState, tick: int, tick_ms: int) -> Step[UserState]:
    """Evaluate at `tick`. Returns (the state, or None once cleared; emissions; new timers)."""
    clock = state.clock
    if not clock.take_agenda(tick):
        return Step(state, [], [], [], changed=False)  # a timer a later event made stale
    applied = clock.due(tick)
    if clock.cleanup_at == tick and not applied:
        return _clear(state, tick)
    timers: list[int] = []
    for ev in applied:
        _apply(state, ev)
        timers += clock.schedule(window_exits(ev.time, WINDOWS.values(), tick_ms))
    if applied:
        timers += clock.set_cleanup(tick_of(state.last_active + RETENTION_MS, tick_ms))
    cutoff = tick - DAY
    drop = bisect.bisect_right(state.recent, cutoff, key=_time)
    del state.recent[:drop]
    clock.prune_seen(tick)
    record = evaluate(state, tick)
    _upgrade_last_record(clock, record)
    emit = clock.emit_rule(tick, tick_ms, applied, record)
    changed = bool(applied) or drop > 0
    return Step(state, [(tick, record)] if emit else [], timers, [], changed)


def _upgrade_last_record(clock: KeyClock, record: Record) -> None:
    """A key restored from a savepoint taken before a field existed compares against a last
    record without it, which would emit every key once for nothing. alerts_opened_1h never
    changes alone (an ALERT_OPEN entering the hour is a fresh event; one leaving it lowers
    interactions_1h too), so a missing value is taken as unchanged."""
    last = clock.last_record
    if last is not None and any(f not in last for f in ADDED_FIELDS):
        clock.last_record = {**{f: record[f] for f in ADDED_FIELDS}, **last}


def _clear(state: UserState, tick: int) -> Step[UserState]:
    """30 days without activity: tombstone, and forget the user. Events after the tombstone
    already waiting in the buffer start a new user (keeping the lateness bound)."""
    waiting = state.clock.pending
    if not waiting:
        return Step(None, [(tick, None)], [], [])
    clock = KeyClock(pending=waiting, agenda=state.clock.agenda, last_tick=tick)
    old = state.clock.seen
    for k in [k for k in old if k not in {e.dedup_key for e in waiting}]:
        del old[k]
    clock.seen = old
    return Step(UserState(state.user_id, clock), [(tick, None)], [], [])


def _apply(state: UserState, ev: Event) -> None:
    r = ev.record
    action, team, t = r["action"], r.get("team_id"), ev.time
    state.recent.append((t, action, r.get("game_id")))
    if state.session_events == 0 or t - state.last_active >= SESSION_GAP_MS:
        state.session_start, state.session_events = t, 0
    state.session_events += 1
    state.last_active = t
    if team:
        apply_team(state.follows, state.affinity, action, team, t)


def apply_team(
    follows: set[str], affinity: dict[str, tuple[float, int]], action: str, team: str, t: int
) -> None:
    """An interaction at `t` carrying `team`: follows, and the team's affinity."""
    if action == "FOLLOW_TEAM":
        follows.add(team)
    elif action == "UNFOLLOW_TEAM":
        follows.discard(team)
        # Only interactions strictly after the last unfollow count: start from zero.
        affinity[team] = (0.0, t)
        return
    weight = FOLLOW_WEIGHT if action == "FOLLOW_TEAM" else 1.0
    value, ref = affinity.get(team, (0.0, t))
    affinity[team] = (value * _decay(t - ref) + weight, t)


def _decay(dt: int) -> float:
    return math.pow(2.0, -dt / AFFINITY_HALF_LIFE_MS)


def evaluate(state: UserState, tick: int) -> Record:
    """The UserFeatures record at `tick` (every applied event is <= tick).

    Runs on every evaluated tick of every user: `recent` is in event-time order, so each
    window is a suffix found by bisection, and the hour is walked once."""
    recent = state.recent
    n = len(recent)
    start = {name: bisect.bisect_right(recent, tick - w, key=_time) for name, w in WINDOWS.items()}
    hour = recent[start["interactions_1h"] :]
    actions = [r[1] for r in hour]
    games = {r[2] for r in hour}
    games.discard(None)
    return {
        "user_id": state.user_id,
        **{name: n - i for name, i in start.items()},
        "video_starts_1h": actions.count("VIDEO_START"),
        "alerts_opened_1h": actions.count("ALERT_OPEN"),
        "distinct_games_1h": len(games),
        "followed_teams": sorted(state.follows),
        "top_teams": top_teams(
            {  # v * _decay(tick - ref), inlined: every team of every user on every tick
                team: v * 2.0 ** ((ref - tick) / AFFINITY_HALF_LIFE_MS)
                for team, (v, ref) in state.affinity.items()
            }
        ),
        "session_id": f"{state.user_id}:{state.session_start}",
        "session_events": state.session_events,
        "session_duration_s": (state.last_active - state.session_start) // 1000,
        "watching_game_id": watching(recent[start["interactions_5m"] :]),
        "last_active_at": state.last_active,
        "feature_time": tick,
    }


def top_teams(affinity: dict[str, float]) -> list[str]:
    """Up to 3 teams by affinity, highest first; near-equal affinities tie, then team id."""
    ranked = sorted((-a, t) for t, a in affinity.items() if a > 0)
    # Sorting by value first and then fixing near-ties by id keeps the order total.
    out: list[tuple[float, str]] = []
    for minus_a, team in ranked:
        a = -minus_a
        if len(out) >= TOP_N:
            # Every later value is <= a: once a is clearly below the top 3 (not tied with
            # the smallest of them), neither it nor any later team can move into them.
            floor = min(out[:TOP_N])[0]
            if not _tied(floor, a):
                break
        pos = len(out)
        while pos > 0 and _tied(out[pos - 1][0], a) and out[pos - 1][1] > team:
            pos -= 1
        out.insert(pos, (a, team))
    return [t for _, t in out[:TOP_N]]


def _tied(a: float, b: float) -> bool:
    return abs(a - b) <= TIE_TOLERANCE * max(abs(a), abs(b))


def watching(five_min: list[tuple[int, str, str | None]]) -> str | None:
    """The game with the most interactions in the last 5 min; ties: the most recent, then id."""
    counts: dict[str, int] = {}
    latest: dict[str, int] = {}
    for t, _, game in five_min:
        if game is not None:
            counts[game] = counts.get(game, 0) + 1
            latest[game] = max(latest.get(game, t), t)
    if not counts:
        return None
    return min(counts, key=lambda g: (-counts[g], -latest[g], g))
