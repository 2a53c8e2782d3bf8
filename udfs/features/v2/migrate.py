"""Carry a key's first-generation state (release 2's layout) into the v2 engine.

Release 2 kept, per key: a pickled KeyClock (`key-clock`), a pickled UserState / GameState
without its clock (`feature-state`, absent until a tick applied something, and cleared
when a game closes), its waiting events (`pending-events`) and its dedup ids
(`dedup-ids`), plus one event-time timer per tick on the clock's agenda. The v2 state
holds the same facts in another shape (udfs.features.v2.user / .game); the waiting events
and dedup ids stay the caller's, unchanged. The conversion is exact: a key converted at
any point carries on to the same records, accepted set and dead letters as if it had
never been converted (tests/unit/features/test_v2_migrate.py runs every key of a feed
through it half-way).

Timers: every v2 due tick of a converted key is a tick on its old agenda (window exits,
event ticks, the cleanup), whose timer the savepoint already holds; `migrate` also
returns the key's next due tick so that an adapter can register it regardless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from udfs.features import common
from udfs.features import game as v1_game
from udfs.features import user as v1_user
from udfs.features.common import Event
from udfs.features.v2 import game, runtime, user


class Migrated(NamedTuple):
    state: Any  # a v2 UserState / GameState
    pending: list[Event]  # waiting events, application order
    tiles: dict[int, bytes]  # a game's interaction tiles (tick -> tile)
    due: int | None  # the key's next due tick


def waiting(clock: common.KeyClock, stored: Iterable[Event]) -> list[Event]:
    """The events still waiting: release 2 left applied events (<= the last tick) in its
    list until a rewrite; they are skipped, as it skipped them."""
    return sorted(runtime.live(list(stored), clock.last_tick), key=runtime.sort_key)


def migrate_user(
    key: str,
    clock: common.KeyClock,
    feature: v1_user.UserState | None,
    stored: Iterable[Event],
    tick_ms: int,
) -> Migrated:
    s = user.new_state(key)
    s.last_tick, s.cleanup_at, s.pruned_hour = clock.last_tick, clock.cleanup_at, clock.pruned_hour
    if feature is not None:
        for t, action, g in feature.recent:
            s.times.append(t)
            s.classes.append(user._CLASS.get(action, user.OTHER))
            s.games.append(g)
        user._add_counts(s, 0)
        s.follows = set(feature.follows)
        s.affinity = dict(feature.affinity)
        s.session_start = feature.session_start
        s.session_events = feature.session_events
        s.last_active = feature.last_active
        if s.last_tick is not None:
            user.advance(s, s.last_tick)
    s.dirty = True
    pending = waiting(clock, stored)
    return Migrated(s, pending, {}, runtime.due_tick(user, s, pending, tick_ms))


def migrate_game(
    key: str,
    clock: common.KeyClock,
    feature: v1_game.GameState | None,
    stored: Iterable[Event],
    tick_ms: int,
) -> Migrated:
    s = game.new_state(key)
    s.last_tick, s.cleanup_at, s.pruned_hour = clock.last_tick, clock.cleanup_at, clock.pruned_hour
    s.closed_at = clock.closed_at
    s.last_record = None
    if clock.last_record is not None:
        s.last_record = {k: v for k, v in clock.last_record.items() if k != "feature_time"}
    tiles: dict[int, bytes] = {}
    if feature is not None and clock.closed_at is None:
        for eid, p in feature.plays.items():
            r = p.record
            s.plays[eid] = game.play_of(r, p.sequence, p.revision, p.anchor)
            if r["event_type"] == "SCORE":
                s.scoring.append((p.anchor, eid))
        s.scoring.sort()
        if feature.current is not None:
            s.current = {f: feature.current.get(f) for f in game.CURRENT_FIELDS}
        s.game_end = feature.game_end
        s.lead_changes, s.ties = feature.lead_changes, feature.ties
        s.latest_event = feature.latest_event
        for t, u in feature.viewers:
            s.times.append(t)
            s.users.append(u)
            s.in_5m[u] = s.in_5m.get(u, 0) + 1
        if s.last_tick is not None:
            game.advance(s, s.last_tick)
        tile = game.take_tile(s)
        if tile is not None and s.last_tick is not None:
            tiles[s.last_tick] = tile
    pending = waiting(clock, stored) if clock.closed_at is None else []
    return Migrated(s, pending, tiles, runtime.due_tick(game, s, pending, tick_ms))


# A key's conversion, by family NAME; `feature` is that family's release-2 state (or None).
Migrate = Callable[[str, common.KeyClock, Any, Iterable[Event], int], Migrated]
MIGRATE: dict[str, Migrate] = {"user": migrate_user, "game": migrate_game}
