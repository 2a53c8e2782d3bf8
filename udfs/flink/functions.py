"""The only Flink-aware feature code: adapters from PyFlink functions to the pure layer.

decode (ProcessFunction): raw Kafka row -> Event, or a dead letter on the side output.
features (KeyedProcessFunction): Event -> the udfs.features.v2 engine; one timer per due
tick; emits (key, Avro value) rows, and dead letters for LATE / DUPLICATE on the side
output. Types are declared at every boundary (udfs.flink.types) so nothing crosses as
pickle except the Event itself; state holds builtins only (no class or module names).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, ProcessFunction, RuntimeContext
from pyflink.datastream.state import (
    ListStateDescriptor,
    MapState,
    MapStateDescriptor,
    ValueStateDescriptor,
)

from udfs.features.common import Event, tick_of
from udfs.features.families import BY_JOB
from udfs.features.v2 import runtime
from udfs.features.v2.migrate import MIGRATE
from udfs.features.v2.runtime import live, sort_key
from udfs.flink import metrics, types
from udfs.flink.partition_clock import PartitionClock, owned_partitions
from udfs.serde.inputs import DeadLetter, RawRecord, dead_letter
from udfs.serde.jobcodecs import JobCodecs, JobSchemas

# State names: renaming one breaks restoring savepoints (docs/architecture.md, "State").
BODY_STATE = "v2-body"  # a user's body / a game's core (udfs.features.v2 encoding)
TICK_STATE = "v2-last-tick"  # the key's last evaluated tick
WAITING_STATE = "v2-waiting"  # accepted events not yet applied, as builtins (pack_event)
TILES_STATE = "v2-tiles"  # a game's interaction tiles: tick -> tile
SEEN_STATE = "dedup-ids"  # kind|event_id|revision -> event time, 24 h (both layouts)
# Release 2's layout (pickled classes), read only to convert a key on first access.
CLOCK_STATE = "key-clock"
FEATURE_STATE = "feature-state"
PENDING_STATE = "pending-events"


def subtask(ctx: RuntimeContext) -> tuple[int, int]:
    """(index, parallelism) of this subtask. PyFlink 2.2's get_index_of_this_subtask calls a
    Java method Flink 2.0 moved to TaskInfo, so ask TaskInfo directly in thread mode."""
    java_ctx = getattr(ctx, "_runtime_context", None)
    if java_ctx is not None and hasattr(java_ctx, "getTaskInfo"):
        info = java_ctx.getTaskInfo()
        return int(info.getIndexOfThisSubtask()), int(info.getNumberOfParallelSubtasks())
    return ctx.get_index_of_this_subtask(), ctx.get_number_of_parallel_subtasks()


log = logging.getLogger("tipoff")


def connect(job: str, schemas: JobSchemas, ctx: RuntimeContext) -> JobCodecs:
    """The job's codecs; unknown schema ids met while the registry is down retry with
    backoff, logged and counted in the `schema_lookup_retries` metric."""
    retries = ctx.get_metrics_group().add_group("tipoff").counter("schema_lookup_retries")

    def on_retry(what: str, delay_s: float) -> None:
        retries.inc()
        log.warning("schema registry unreachable (%s); retrying in %.1fs", what, delay_s)

    return JobCodecs.connect(job, schemas, sleep=time.sleep, on_retry=on_retry)


MIN_WATERMARK = -(2**63)  # Long.MIN_VALUE: no watermark yet


def _now() -> int:
    return int(time.time() * 1000)


def _epoch_ms(ts: Any) -> int | None:
    if ts is None:
        return None
    if hasattr(ts, "timestamp"):
        return int(ts.timestamp() * 1000)
    # Thread mode hands TIMESTAMP_LTZ over as a java.time.Instant.
    return int(ts.toEpochMilli())


def _raw(row: Row) -> RawRecord:
    return RawRecord(
        topic=row[2],
        partition=int(row[3]),
        offset=int(row[4]),
        timestamp=_epoch_ms(row[5]),
        key=None if row[0] is None else bytes(row[0]),
        value=None if row[1] is None else bytes(row[1]),
    )


class Decode(ProcessFunction):  # type: ignore[misc]
    """Decode and validate each input record; route failures to dead letters."""

    def __init__(
        self,
        job: str,
        schemas: JobSchemas,
        partitions: dict[str, int],
        end_offsets: dict[str, int] | None,
        idle_ms: int,
    ) -> None:
        self.job, self.schemas = job, schemas
        self.partitions, self.end_offsets, self.idle_ms = partitions, end_offsets, idle_ms
        self.codecs: JobCodecs | None = None

    def open(self, runtime_context: RuntimeContext) -> None:
        self.codecs = connect(self.job, self.schemas, runtime_context)
        self.metrics = metrics.OperatorMetrics(runtime_context)
        self.key_of = BY_JOB[self.job].key_of
        reader, readers = subtask(runtime_context)
        inputs = {t: n for t, n in self.partitions.items() if t in self.codecs.inputs.kinds}
        ends = None
        if self.end_offsets is not None:
            ends = {
                (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1])): v
                for k, v in self.end_offsets.items()
            }
        # Bounded: partitions are never idle, they finish (at their end offset). Wall-clock
        # idleness would exclude a partition that merely waits while the reader is busy
        # with another one, and make its whole backlog late.
        idle_ms = 2**62 if ends is not None else self.idle_ms
        self.clock = PartitionClock(
            owned_partitions(inputs, reader, readers), ends, idle_ms, _now()
        )

    def process_element(self, row: Row, ctx: ProcessFunction.Context) -> Any:
        assert self.codecs is not None
        started = time.perf_counter_ns()
        raw = _raw(row)
        self.metrics.count(metrics.EVENTS_IN, raw.topic)
        now = _now()
        out = self.codecs.inputs(raw, now)
        if isinstance(out, dict):
            self.metrics.count(metrics.DEAD_LETTERS, raw.topic, out["reason"])
            self.metrics.timed(started)
            yield types.DEAD_LETTERS, dead_letter_row(self.codecs, out)
            return
        basis = self.clock.observe((raw.topic, raw.partition), raw.offset, out.time, now)
        key = self.key_of(out)
        self.metrics.timed(started)
        if key is None:
            # nothing in this job counts it (an interaction without a game)
            self.metrics.count(metrics.NOT_KEYED, raw.topic)
            return
        # Field 1 becomes the record timestamp the JVM watermark generator reads: the
        # per-partition basis, not the event's own time (the event time is in the Event).
        yield Row(key, Row(key, out.time, out)), basis


class SeenIds(MutableMapping[str, int]):
    """The dedup ids of the current key in a MapState. With `ids` set (the key's ids as
    last read, kept in the StateCache entry) lookups are answered from it — a MapState
    lookup is a JNI call of about 25 µs in thread mode, on every arrival — and changes are
    written through to both; with `ids` None every access goes to the MapState."""

    def __init__(self, state: MapState) -> None:
        self.state = state
        self.ids: dict[str, int] | None = None

    def load(self) -> dict[str, int]:
        """The current key's ids, read from the MapState."""
        return {k: int(v) for k, v in self.state.items()}

    def __getitem__(self, key: str) -> int:
        if self.ids is not None:
            return self.ids[key]
        value = self.state.get(key)
        if value is None:
            raise KeyError(key)
        return int(value)

    def __setitem__(self, key: str, value: int) -> None:
        self.state.put(key, value)
        if self.ids is not None:
            self.ids[key] = value

    def __delitem__(self, key: str) -> None:
        if self.ids is not None:
            del self.ids[key]
        self.state.remove(key)

    def __contains__(self, key: object) -> bool:
        if self.ids is not None:
            return key in self.ids
        return bool(self.state.contains(key))

    def __iter__(self) -> Iterator[str]:
        if self.ids is not None:
            return iter(list(self.ids))
        return iter(list(self.state.keys()))

    def __len__(self) -> int:
        if self.ids is not None:
            return len(self.ids)
        return sum(1 for _ in self.state.keys())  # noqa: SIM118 - a MapState, not a dict

    def clear(self) -> None:
        self.state.clear()
        if self.ids is not None:
            self.ids.clear()


@dataclass(slots=True)
class Cached:
    """One key's state as last read from or written to Flink: the v2 state (None: the key
    has none yet), its waiting events in application order, how many events the
    WAITING_STATE list still holds although a tick has applied them (see `live`), and the
    ticks of a game's tiles in TILES_STATE, and its dedup ids while it is cached."""

    state: Any
    pending: list[Event] = field(default_factory=list)
    applied: int = 0
    tiles: list[int] = field(default_factory=list)
    ids: dict[str, int] | None = None  # the dedup ids (SeenIds.ids), when cached


class StateCache:
    """A read cache of this subtask's keyed state, least recently used keys evicted.

    Flink's state stays the only copy that counts: every change is written through at
    once, so checkpoints and savepoints see everything, and a restarted or rescaled task
    starts with an empty cache (open()). What it saves is the JNI calls and the decoding
    of every read. The Python objects cost several times the encoded bytes: size it to the
    active keys of a subtask, not to all of them.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[str, Cached] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: str) -> Cached | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Cached) -> None:
        if self.capacity <= 0:
            return
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def drop(self, key: str) -> None:
        self.entries.pop(key, None)


def pack_event(ev: Event) -> tuple[Any, ...]:
    """A waiting event as builtins (WAITING_STATE): no class or module name in the bytes."""
    raw = ev.source
    source = None
    if raw is not None:
        source = (raw.topic, raw.partition, raw.offset, raw.timestamp, raw.key, raw.value)
    return (ev.time, ev.topic, ev.partition, ev.offset, ev.kind, dict(ev.record), source)


def unpack_event(item: tuple[Any, ...]) -> Event:
    time_, topic, partition, offset, kind, record, source = item
    raw = None if source is None else RawRecord(*source)
    return Event(time_, topic, partition, offset, kind, record, raw)


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
        stored = _unpack(self.old_pending.get())
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
        now = _now()
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
        now = _now()
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


def _unpack(items: Iterable[Event | tuple[Event, ...]] | None) -> list[Event]:
    """Release 2's PENDING_STATE list: arrivals appended one Event each; a tick that took
    some rewrote the rest as one tuple. Release 1 wrote Events only."""
    out: list[Event] = []
    for item in items or ():
        if isinstance(item, tuple):
            out.extend(item)
        else:
            out.append(item)
    return out


def dead_letter_row(codecs: JobCodecs, dl: DeadLetter) -> Row:
    return Row(dl["key"], codecs.dead_letter_value(dl), None)
