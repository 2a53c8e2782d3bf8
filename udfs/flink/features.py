"""features (KeyedProcessFunction): Event -> the udfs.features.v2 engine; one timer per due
tick; emits (key, Avro value) rows, and dead letters for LATE / DUPLICATE on the side
output.

With udfs.flink.decode, the only Flink-aware feature code: adapters from PyFlink functions
to the pure layer. Types are declared at every boundary (udfs.flink.types) so nothing
crosses as pickle except the Event itself; state holds builtins only (udfs.flink.state).
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import (
    ListStateDescriptor,
    MapStateDescriptor,
    ValueStateDescriptor,
)

from udfs.features.common import Event, tick_of
from udfs.features.families import BY_JOB
from udfs.features.v2 import runtime
from udfs.features.v2.migrate import MIGRATE
from udfs.features.v2.runtime import live, sort_key
from udfs.flink import metrics, types
from udfs.flink.common import connect, dead_letter_row, now_ms
from udfs.flink.state import (
    BODY_STATE,
    CLOCK_STATE,
    FEATURE_STATE,
    PENDING_STATE,
    SEEN_STATE,
    TICK_STATE,
    TILES_STATE,
    WAITING_STATE,
    Cached,
    SeenIds,
    StateCache,
    pack_event,
    unpack_event,
    unpack_pending,
)
from udfs.serde.inputs import RawRecord, dead_letter
from udfs.serde.jobcodecs import JobSchemas

MIN_WATERMARK = -(2**63)  # Long.MIN_VALUE: no watermark yet


class Features(KeyedProcessFunction):  # type: ignore[misc]
    """Per-key feature state machine (udfs.features.v2) with one event-time timer per due tick.

    An arrival reads only what deciding LATE / DUPLICATE needs (the key's state, usually
    cached, and one dedup id in a MapState) and appends the event to the key's waiting
    list; an evaluated tick writes the key's last tick (a long), its body when an event
    was applied, a game's core and the tick's tile. Keys still in release-2's layout
    (pickled KeyClock / UserState / GameState) are converted on first access
    (udfs.features.v2.migrate) and their old state cleared. Reads go through a StateCache of
    `cache_keys` keys (0: none).
    """

    def __init__(self, job: str, schemas: JobSchemas, tick_ms: int, cache_keys: int = 0) -> None:
        self.job, self.schemas, self.tick_ms = job, schemas, tick_ms
        self.cache_keys = cache_keys

    def open(self, runtime_context: RuntimeContext) -> None:
        self.family = BY_JOB[self.job].engine
        self.tiled = hasattr(self.family, "take_tile")  # a game: its interactions in tiles
        self.migrate = MIGRATE[self.family.NAME]
        self.declare_state(runtime_context)
        self.codecs = connect(self.job, self.schemas, runtime_context)
        # Always empty at (re)start: after a restore, only Flink's state is true.
        self.cache = StateCache(self.cache_keys)
        self.metrics = metrics.OperatorMetrics(runtime_context)

    def declare_state(self, ctx: RuntimeContext) -> None:
        """Declare the keyed state (names, types): open() does it first; the savepoint
        planner (flink_jobs.cluster.buildplan) calls it alone to read the layout offline."""
        self.body = ctx.get_state(ValueStateDescriptor(BODY_STATE, types.PICKLED_STATE))
        self.last_tick = ctx.get_state(ValueStateDescriptor(TICK_STATE, Types.LONG()))
        self.waiting = ctx.get_list_state(ListStateDescriptor(WAITING_STATE, types.PICKLED_STATE))
        self.tiles = ctx.get_map_state(
            MapStateDescriptor(TILES_STATE, Types.LONG(), types.PICKLED_STATE)
        )
        self.seen = SeenIds(
            ctx.get_map_state(MapStateDescriptor(SEEN_STATE, Types.STRING(), Types.LONG()))
        )
        # Release 2's layout, read once per key to convert it.
        self.old_clock = ctx.get_state(ValueStateDescriptor(CLOCK_STATE, types.PICKLED_STATE))
        self.old_feature = ctx.get_state(ValueStateDescriptor(FEATURE_STATE, types.PICKLED_STATE))
        self.old_pending = ctx.get_list_state(
            ListStateDescriptor(PENDING_STATE, types.PICKLED_STATE)
        )

    # --- reading a key ------------------------------------------------------------------

    def _entry(self, key: str, ctx: Any) -> Cached:
        entry = self.cache.get(key)
        if entry is None:
            entry = self._load(key, ctx)
            if self.cache.capacity > 0:
                entry.ids = self.seen.load()
                self.cache.put(key, entry)
        self.seen.ids = entry.ids
        return entry

    def _load(self, key: str, ctx: Any) -> Cached:
        body = self.body.value()
        if body is None and self.old_clock.value() is not None:
            return self._convert(key, ctx)
        last = self.last_tick.value()
        stored = [unpack_event(i) for i in self.waiting.get() or ()]
        pending = sorted(live(stored, last), key=sort_key)
        entry = Cached(None, pending, len(stored) - len(pending))
        if body is None:  # a new key: at most waiting events so far
            entry.state = self.family.new_state(key) if pending else None
            return entry
        if self.tiled:
            entry.tiles = sorted(int(t) for t in self.tiles.keys())  # noqa: SIM118
            tiles = [self.tiles.get(t) for t in entry.tiles]
            entry.state = self.family.decode(key, body, last, tiles)
        else:
            entry.state = self.family.decode(key, body, last)
        return entry

    def _convert(self, key: str, ctx: Any) -> Cached:
        """A key in release 2's layout: into v2, written at once, the old state cleared."""
        clock = self.old_clock.value()
        feature = self.old_feature.value()
        stored = unpack_pending(self.old_pending.get())
        m = self.migrate(key, clock, feature, stored, self.tick_ms)
        entry = Cached(m.state, m.pending, 0, sorted(m.tiles))
        self._write(m.state)
        self.waiting.update([pack_event(e) for e in m.pending])
        for t, tile in m.tiles.items():
            self.tiles.put(t, tile)
        self.old_clock.clear()
        self.old_feature.clear()
        self.old_pending.clear()
        if m.due is not None:
            ctx.timer_service().register_event_time_timer(m.due)
        return entry

    def _write(self, state: Any) -> None:
        body = self.family.encode(state)
        if body is not None:
            self.body.update(body)
        if state.last_tick is not None:
            self.last_tick.update(state.last_tick)

    # --- arrivals and ticks -------------------------------------------------------------

    def process_element(self, row: Row, ctx: KeyedProcessFunction.Context) -> Any:
        started = time.perf_counter_ns()
        ev: Event = row[2]
        key = row[0]
        entry = self._entry(key, ctx)
        watermark = ctx.timer_service().current_watermark()
        now = now_ms()
        if watermark > MIN_WATERMARK and self.metrics.due(metrics.EVENT_TIME_LAG, now):
            self.metrics.gauge(metrics.EVENT_TIME_LAG, now - watermark)
        rejected = runtime.check(entry.state, ev, watermark, self.seen)
        if rejected is not None:
            self.metrics.timed(started)
            yield types.DEAD_LETTERS, self._dead(ev, rejected.reason, rejected.error)
            return
        self.metrics.count(metrics.ACCEPTED, ev.topic)
        if entry.state is None:
            entry.state = self.family.new_state(key)
        before = entry.pending[-1].time if entry.pending else None
        tick = runtime.admit(ev, entry.pending, self.seen, self.tick_ms)
        self.waiting.add(pack_event(ev))  # append only: a hot key's buffer may be long
        if before is None or tick_of(before, self.tick_ms) != tick:
            # (A timer set twice for the same key and tick is one timer.)
            ctx.timer_service().register_event_time_timer(tick)
        self.metrics.timed(started)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
        started = time.perf_counter_ns()
        key = ctx.get_current_key()
        entry = self._entry(key, ctx)
        if entry.state is None:
            return
        waiting = len(entry.pending)
        step = runtime.on_tick(
            self.family, entry.state, timestamp, self.tick_ms, entry.pending, self.seen
        )
        if not step.changed:
            return  # stale: a later change moved what was due
        if step.state is None:
            self._clear()
            self.cache.drop(key)
        else:
            if step.state is not entry.state:  # a new life: cleared with events waiting, or closed
                entry.state = step.state  # (its body is written below: a new state is dirty)
                for t in entry.tiles:
                    self.tiles.remove(t)
                entry.tiles = []
            self._write(step.state)
            if self.tiled:
                self._tiles(entry, step.state, timestamp)
            self._waiting(entry, waiting)
            for t in step.timers:
                ctx.timer_service().register_event_time_timer(t)
        now = now_ms()
        # Also here: a burst that arrives before the first watermark sets no lag on arrival.
        if self.metrics.due(metrics.EVENT_TIME_LAG, now):
            lag = now - ctx.timer_service().current_watermark()
            self.metrics.gauge(metrics.EVENT_TIME_LAG, lag)
        out = [
            Row(key.encode(), self.codecs.feature_value(value, now), feature_time)
            for feature_time, value in step.emissions
        ]
        if out:
            self.metrics.count(metrics.EMITTED, None, n=len(out))
            if self.metrics.due(metrics.FRESHNESS, now):
                self.metrics.gauge(metrics.FRESHNESS, now - step.emissions[-1][0])
        self.metrics.timed(started)
        yield from out
        for ev, rejected in step.rejected:
            yield types.DEAD_LETTERS, self._dead(ev, rejected.reason, rejected.error)

    def _tiles(self, entry: Cached, state: Any, tick: int) -> None:
        tile = self.family.take_tile(state)
        if tile is not None:
            self.tiles.put(tick, tile)
            entry.tiles.append(tick)
        n = 0
        while n < len(entry.tiles) and self.family.tile_expired(entry.tiles[n], tick):
            self.tiles.remove(entry.tiles[n])
            n += 1
        del entry.tiles[:n]

    def _waiting(self, entry: Cached, before: int) -> None:
        """A tick takes the earliest waiting events: what it took may stay in the list
        (`live` skips it on a read) until the list holds more applied events than waiting
        ones; rewriting what still waits on every tick would cost a hot key its buffer."""
        remaining = len(entry.pending)
        entry.applied += before - remaining
        if not remaining:
            if entry.applied or before:
                self.waiting.clear()
            entry.applied = 0
        elif entry.applied > remaining:
            self.waiting.update([pack_event(e) for e in entry.pending])
            entry.applied = 0

    def _clear(self) -> None:
        self.body.clear()
        self.last_tick.clear()
        self.waiting.clear()
        self.tiles.clear()
        self.seen.clear()

    def _dead(self, ev: Event, reason: str, error: str) -> Row:
        self.metrics.count(metrics.DEAD_LETTERS, ev.topic, reason)
        raw = ev.source or RawRecord(ev.topic, ev.partition, ev.offset, None, None, None)
        return dead_letter_row(self.codecs, dead_letter(self.job, reason, error, raw))
