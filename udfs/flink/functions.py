"""The only Flink-aware feature code: adapters from PyFlink functions to the pure layer.

decode (ProcessFunction): raw Kafka row -> Event, or a dead letter on the side output.
features (KeyedProcessFunction): Event -> udfs.features machine; timers at due ticks;
emits (key, Avro value) rows, and dead letters for LATE / DUPLICATE on the side output.
Types are declared at every boundary (udfs.flink.types) so nothing crosses as pickle
except the Event itself and the per-key state blob.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, ProcessFunction, RuntimeContext
from pyflink.datastream.state import (
    ListStateDescriptor,
    MapState,
    MapStateDescriptor,
    ValueStateDescriptor,
)

from udfs.features.common import Event, KeyClock, offer
from udfs.features.families import BY_JOB
from udfs.flink import metrics, types
from udfs.flink.partition_clock import PartitionClock, owned_partitions
from udfs.serde.inputs import DeadLetter, RawRecord, dead_letter
from udfs.serde.jobcodecs import JobCodecs, JobSchemas

# State names: renaming one breaks restoring savepoints.
CLOCK_STATE = "key-clock"
FEATURE_STATE = "feature-state"
SEEN_STATE = "dedup-ids"
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
    """The dedup ids of the current key, read and written in a MapState one id at a time."""

    def __init__(self, state: MapState) -> None:
        self.state = state

    def __getitem__(self, key: str) -> int:
        value = self.state.get(key)
        if value is None:
            raise KeyError(key)
        return int(value)

    def __setitem__(self, key: str, value: int) -> None:
        self.state.put(key, value)

    def __delitem__(self, key: str) -> None:
        self.state.remove(key)

    def __contains__(self, key: object) -> bool:
        return bool(self.state.contains(key))

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.state.keys()))

    def __len__(self) -> int:
        return sum(1 for _ in self.state.keys())  # noqa: SIM118 - a MapState, not a dict


@dataclass(slots=True)
class Cached:
    """One key's state as last read from or written to Flink. `pending` is the key's
    waiting events (None: not read yet); `applied` counts the events the PENDING_STATE list
    still holds although a tick has applied them (see `live`); `feature` is read when
    first needed."""

    clock: KeyClock | None
    pending: list[Event] | None = None
    applied: int = 0
    feature: Any = None
    feature_read: bool = False


class StateCache:
    """A read cache of this subtask's keyed state, least recently used keys evicted.

    Flink's state stays the only copy that counts: every change is written through at
    once, so checkpoints and savepoints see everything, and a restarted or rescaled task
    starts with an empty cache (open()). What it saves is the JNI call and the unpickling
    of every read: a key's event tick, and its window exits shortly after, find the state
    of its last write. The Python objects cost several times the pickled bytes: size it
    to the active keys of a subtask, not to all of them.
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


class Features(KeyedProcessFunction):  # type: ignore[misc]
    """Per-key feature state machine with event-time timers at its due ticks.

    State is split so an arrival touches only what deciding LATE / DUPLICATE needs: the
    key's clock (a small blob) and its dedup ids (a MapState); the feature state proper
    (windows, plays, viewers, ...) is read and written once per evaluated tick, and the
    waiting events (a ListState) only when a tick takes some of them. Reads go through a
    StateCache of `cache_keys` keys (0: none).
    """

    def __init__(self, job: str, schemas: JobSchemas, tick_ms: int, cache_keys: int = 0) -> None:
        self.job, self.schemas, self.tick_ms = job, schemas, tick_ms
        self.cache_keys = cache_keys

    def open(self, runtime_context: RuntimeContext) -> None:
        self.machine = BY_JOB[self.job].machine
        self.clock_state = runtime_context.get_state(
            ValueStateDescriptor(CLOCK_STATE, types.PICKLED_STATE)
        )
        self.feature_state = runtime_context.get_state(
            ValueStateDescriptor(FEATURE_STATE, types.PICKLED_STATE)
        )
        self.pending = runtime_context.get_list_state(
            ListStateDescriptor(PENDING_STATE, types.PICKLED_STATE)
        )
        self.seen = SeenIds(
            runtime_context.get_map_state(
                MapStateDescriptor(SEEN_STATE, Types.STRING(), Types.LONG())
            )
        )
        self.codecs = connect(self.job, self.schemas, runtime_context)
        # Always empty at (re)start: after a restore, only Flink's state is true.
        self.cache = StateCache(self.cache_keys)
        self.metrics = metrics.OperatorMetrics(runtime_context)

    def _entry(self, key: str) -> Cached:
        entry = self.cache.get(key)
        if entry is None:
            entry = Cached(self.clock_state.value())
            self.cache.put(key, entry)
        return entry

    def _store_clock(self, entry: Cached, clock: KeyClock) -> None:
        _detach(clock)
        self.clock_state.update(clock)
        entry.clock = clock

    def process_element(self, row: Row, ctx: KeyedProcessFunction.Context) -> Any:
        started = time.perf_counter_ns()
        ev: Event = row[2]
        entry = self._entry(row[0])
        clock = entry.clock or KeyClock()
        clock.seen = self.seen
        watermark = ctx.timer_service().current_watermark()
        now = _now()
        if watermark > MIN_WATERMARK and self.metrics.due(metrics.EVENT_TIME_LAG, now):
            self.metrics.gauge(metrics.EVENT_TIME_LAG, now - watermark)
        rejected, ticks = offer(clock, ev, watermark, self.tick_ms)
        if rejected is not None:
            _detach(clock)
            self.metrics.timed(started)
            yield types.DEAD_LETTERS, self._dead(ev, rejected.reason, rejected.error)
            return
        self.metrics.count(metrics.ACCEPTED, ev.topic)
        # Append only: while the watermark waits, a hot key's buffer may grow large.
        self.pending.add(ev)
        if entry.pending is not None:
            # Kept in application order, so a tick need not sort a hot key's whole buffer.
            bisect.insort(entry.pending, ev, key=_sort_key)
        if ticks or entry.clock is None:
            self._store_clock(entry, clock)
        else:
            # Its tick was already on the agenda: the clock did not change (the event went
            # to the ListState, its id to the MapState), so a hot key skips the rewrite.
            _detach(clock)
        for t in ticks:
            ctx.timer_service().register_event_time_timer(t)
        self.metrics.timed(started)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
        started = time.perf_counter_ns()
        key = ctx.get_current_key()
        entry = self._entry(key)
        clock = entry.clock
        if clock is None or not clock.scheduled(timestamp):
            return  # stale (a later event moved the cleanup): skip loading the key's state
        if entry.pending is None:
            stored = _unpack(self.pending.get())
            entry.pending = sorted(live(stored, clock.last_tick), key=_sort_key)
            entry.applied = len(stored) - len(entry.pending)
        waiting = len(entry.pending)
        clock.pending = list(entry.pending)
        clock.seen = self.seen
        if not entry.feature_read:
            entry.feature, entry.feature_read = self.feature_state.value(), True
        state = entry.feature or self.machine.new_state(key)
        state.clock = clock
        step = self.machine.on_tick(state, timestamp, self.tick_ms)
        if step.state is None:
            self.clock_state.clear()
            self.feature_state.clear()
            self.seen.state.clear()
            self.pending.clear()
            self.cache.drop(key)
        else:
            remaining = step.state.clock.pending
            # A tick only ever takes events, the earliest ones, all <= the tick: what it took
            # may stay in the list (`live` skips it) until the list holds more applied events
            # than waiting ones. Rewriting what still waits on every tick cost a hot game
            # key its whole buffer per tick, and in a backlog (one input read ahead of the
            # other, the watermark held by the slower) that buffer holds minutes of events.
            entry.applied += waiting - len(remaining)
            if not remaining:
                if entry.applied or waiting:
                    self.pending.clear()
                entry.applied = 0
            elif entry.applied > len(remaining):
                self.pending.update([tuple(remaining)])
                entry.applied = 0
            # Already a list of its own (clock.pending was a copy; `due` slices it): the
            # next arrival inserts into it, the next tick copies it again.
            entry.pending = remaining
            self._store_clock(entry, step.state.clock)
            if step.state.clock.closed_at is not None:
                self.feature_state.clear()  # a closed game keeps only its clock
                entry.feature = None
            elif step.changed or entry.feature is None:
                entry.feature = replace(step.state, clock=KeyClock())
                self.feature_state.update(entry.feature)
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

    def _dead(self, ev: Event, reason: str, error: str) -> Row:
        self.metrics.count(metrics.DEAD_LETTERS, ev.topic, reason)
        raw = ev.source or RawRecord(ev.topic, ev.partition, ev.offset, None, None, None)
        return dead_letter_row(self.codecs, dead_letter(self.job, reason, error, raw))


def _sort_key(ev: Event) -> tuple[int, str, int, int]:
    return ev.sort_key


def _detach(clock: KeyClock) -> None:
    """The clock as it is stored and cached: its dedup ids live in the MapState and its
    waiting events in the ListState, not in the pickled clock."""
    clock.seen, clock.pending = {}, []


def live(stored: list[Event], last_tick: int | None) -> list[Event]:
    """The events of a PENDING_STATE list still waiting: a tick T applies every waiting
    event <= T and becomes the key's last tick, and an event is only accepted after it if
    it is later than that (the lateness rule), so what is <= the last tick was applied."""
    if last_tick is None:
        return stored
    return [e for e in stored if e.time > last_tick]


def _unpack(items: Iterable[Event | tuple[Event, ...]] | None) -> list[Event]:
    """The waiting events of a PENDING_STATE list: arrivals append one Event each; a tick
    that takes some rewrites the rest as one tuple, pickled in one go (a hot key's buffer
    is rewritten every tick: one pickle call and one JNI element instead of hundreds).
    Release 1 wrote Events only; it cannot read the tuples (see docs/savepoints.md)."""
    out: list[Event] = []
    for item in items or ():
        if isinstance(item, tuple):
            out.extend(item)
        else:
            out.append(item)
    return out


def dead_letter_row(codecs: JobCodecs, dl: DeadLetter) -> Row:
    return Row(dl["key"], codecs.dead_letter_value(dl), None)
