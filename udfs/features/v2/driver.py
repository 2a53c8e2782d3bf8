"""Run a v2 feature family over a list of events without Flink (the same small event-time
runtime as udfs.features.driver, for the v2 engine).

`store` says what happens to a key's state after each change, as a Flink adapter must
store it: "none" keeps the objects only; "encode" also encodes it (the core, and for a
game the tile of the tick; expired tiles are deleted) while working on the objects, as
an adapter with a read cache does (the engine benchmark counts this cost); "roundtrip"
encodes it and carries on with the state decoded from those bytes, as an adapter without
a cache (after a restore) does: the tests use it to show that the encoding loses nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Any

from udfs.features.common import Event
from udfs.features.driver import MIN_WATERMARK, RunResult
from udfs.features.families import FAMILIES
from udfs.features.v2 import runtime
from udfs.features.v2.migrate import Migrated

STORE_MODES = ("none", "encode", "roundtrip")


def run(
    family: str,
    events: Iterable[Event],
    tick_ms: int = 1000,
    out_of_orderness_ms: int | None = None,
    store: str = "none",
    on_state: Callable[[str, bytes], None] | None = None,
    initial: Iterable[tuple[str, Migrated, dict[str, int]]] = (),
    timers_set: Iterable[tuple[int, str]] = (),
) -> RunResult:
    """`on_state(key, bytes)` sees every encoded core and tile written. `initial`: keys to
    start from (key, migrated state, dedup ids), e.g. converted from a release-2
    savepoint, with `timers_set` the timers that savepoint holds."""
    if store not in STORE_MODES:
        raise ValueError(f"store must be one of {STORE_MODES}, not {store!r}")
    fam, key_of = FAMILIES[family].engine, FAMILIES[family].key_of
    tiled = hasattr(fam, "take_tile")
    states: dict[str, Any] = {}
    cores: dict[str, bytes] = {}
    tiles: dict[str, dict[int, bytes]] = {}
    pending: dict[str, list[Event]] = {}
    seen: dict[str, dict[str, int]] = {}
    timers: list[tuple[int, str]] = []
    queued: set[tuple[int, str]] = set()
    res = RunResult()
    watermark = MIN_WATERMARK  # a restored job's watermark starts over

    def save(key: str, s: Any) -> None:
        states[key] = s
        if store == "none":
            return
        data = fam.encode(s)  # None: only the last tick changed (a long of its own)
        if data is not None:
            cores[key] = data
            if on_state is not None:
                on_state(key, data)
        data = cores[key]
        mine = tiles.setdefault(key, {})
        if tiled:
            tile = fam.take_tile(s)
            if tile is not None:
                mine[s.last_tick] = tile
                if on_state is not None:
                    on_state(key, tile)
            if s.last_tick is not None:
                for t in [t for t in mine if fam.tile_expired(t, s.last_tick)]:
                    del mine[t]
        if store == "roundtrip":
            if tiled:
                states[key] = fam.decode(key, data, s.last_tick, [mine[t] for t in sorted(mine)])
            else:
                states[key] = fam.decode(key, data, s.last_tick)

    def drop(key: str) -> None:
        for d in (states, cores, tiles, pending, seen):
            d.pop(key, None)

    def add(key: str, ticks: list[int]) -> None:
        for t in ticks:
            if (t, key) not in queued:
                queued.add((t, key))
                heapq.heappush(timers, (t, key))

    def add_all(pairs: Iterable[tuple[int, str]]) -> None:
        for t, key in pairs:
            add(key, [t])

    def fire_until(limit: float) -> None:
        while timers and timers[0][0] <= limit:
            tick, key = heapq.heappop(timers)
            queued.discard((tick, key))
            state = states.get(key)
            if state is None:
                continue
            waiting = pending.setdefault(key, [])
            ids = seen.setdefault(key, {})
            step = runtime.on_tick(fam, state, tick, tick_ms, waiting, ids)
            if step.state is None:
                drop(key)
            elif step.changed:
                if step.state is not state:
                    tiles.pop(key, None)  # a new life (cleared or closed): none of its tiles
                save(key, step.state)
            res.outputs.extend((key, t, v) for t, v in step.emissions)
            res.rejected.extend(step.rejected)
            for ev, _ in step.rejected:
                res.accepted.remove(ev)
            add(key, step.timers)

    for entity, m, known in initial:
        states[entity], pending[entity], seen[entity] = m.state, m.pending, known
        tiles[entity] = m.tiles
        if store != "none":
            save(entity, m.state)
        add(entity, [] if m.due is None else [m.due])
    add_all(timers_set)

    max_seen = MIN_WATERMARK
    for ev in events:
        key = key_of(ev)
        if key is None:
            continue
        state = states.get(key)
        ids = seen.setdefault(key, {})
        rejected = runtime.check(state, ev, watermark, ids)
        if rejected:
            res.rejected.append((ev, rejected))
            continue
        if state is None:
            save(key, fam.new_state(key))
        res.accepted.append(ev)
        add(key, [runtime.admit(ev, pending.setdefault(key, []), ids, tick_ms)])
        if out_of_orderness_ms is not None:
            max_seen = max(max_seen, ev.time)
            watermark = max(watermark, max_seen - out_of_orderness_ms - 1)
            fire_until(watermark)
    fire_until(float("inf"))
    return res
