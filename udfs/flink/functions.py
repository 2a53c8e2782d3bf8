"""The only Flink-aware feature code: adapters from PyFlink functions to the pure layer.

decode (ProcessFunction): raw Kafka row -> Event, or a dead letter on the side output.
features (KeyedProcessFunction): Event -> udfs.features machine; timers at due ticks;
emits (key, Avro value) rows, and dead letters for LATE / DUPLICATE on the side output.
Types are declared at every boundary (udfs.flink.types) so nothing crosses as pickle
except the Event itself and the per-key state blob.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pyflink.common import Row
from pyflink.datastream import KeyedProcessFunction, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from udfs.features.common import Event
from udfs.features.families import BY_JOB
from udfs.flink import types
from udfs.flink.partition_clock import PartitionClock, owned_partitions
from udfs.serde.inputs import DeadLetter, RawRecord, dead_letter
from udfs.serde.jobcodecs import JobCodecs

log = logging.getLogger("tipoff")
STATE_NAME = "feature-state"  # renaming it breaks restoring savepoints


def subtask(ctx: RuntimeContext) -> tuple[int, int]:
    """(index, parallelism) of this subtask. PyFlink 2.2's get_index_of_this_subtask calls a
    Java method Flink 2.0 moved to TaskInfo, so ask TaskInfo directly in thread mode."""
    java_ctx = getattr(ctx, "_runtime_context", None)
    if java_ctx is not None and hasattr(java_ctx, "getTaskInfo"):
        info = java_ctx.getTaskInfo()
        return int(info.getIndexOfThisSubtask()), int(info.getNumberOfParallelSubtasks())
    return ctx.get_index_of_this_subtask(), ctx.get_number_of_parallel_subtasks()


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
        registry_url: str,
        topics: dict[str, str],
        partitions: dict[str, int],
        end_offsets: dict[str, int] | None,
        idle_ms: int,
    ) -> None:
        self.job, self.registry_url, self.topics = job, registry_url, topics
        self.partitions, self.end_offsets, self.idle_ms = partitions, end_offsets, idle_ms
        self.codecs: JobCodecs | None = None

    def open(self, runtime_context: RuntimeContext) -> None:
        self.codecs = JobCodecs.connect(self.job, self.registry_url, self.topics)
        self.key_of = BY_JOB[self.job].key_of
        reader, readers = subtask(runtime_context)
        inputs = {t: n for t, n in self.partitions.items() if t in self.codecs.inputs.kinds}
        ends = None
        if self.end_offsets is not None:
            ends = {
                (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1])): v
                for k, v in self.end_offsets.items()
            }
        self.clock = PartitionClock(
            owned_partitions(inputs, reader, readers), ends, self.idle_ms, _now()
        )

    def process_element(self, row: Row, ctx: ProcessFunction.Context) -> Any:
        assert self.codecs is not None
        raw = _raw(row)
        now = _now()
        out = self.codecs.inputs(raw, now)
        if isinstance(out, dict):
            yield types.DEAD_LETTERS, dead_letter_row(self.codecs, out)
            return
        basis = self.clock.observe((raw.topic, raw.partition), raw.offset, out.time, now)
        key = self.key_of(out)
        if key is None:
            return  # nothing in this job counts it (an interaction without a game)
        # Field 1 becomes the record timestamp the JVM watermark generator reads: the
        # per-partition basis, not the event's own time (the event time is in the Event).
        yield Row(key, out.time, out), basis


class Features(KeyedProcessFunction):  # type: ignore[misc]
    """Per-key feature state machine with event-time timers at its due ticks."""

    def __init__(self, job: str, registry_url: str, topics: dict[str, str], tick_ms: int) -> None:
        self.job, self.registry_url, self.topics, self.tick_ms = job, registry_url, topics, tick_ms

    def open(self, runtime_context: RuntimeContext) -> None:
        self.machine = BY_JOB[self.job].machine
        self.state = runtime_context.get_state(
            ValueStateDescriptor(STATE_NAME, types.PICKLED_STATE)
        )
        self.codecs = JobCodecs.connect(self.job, self.registry_url, self.topics)

    def process_element(self, row: Row, ctx: KeyedProcessFunction.Context) -> Any:
        ev: Event = row[2]
        key = row[0]
        state = self.state.value() or self.machine.new_state(key)
        watermark = ctx.timer_service().current_watermark()
        rejected, ticks = self.machine.offer(state, ev, watermark, self.tick_ms)
        if rejected is not None:
            yield types.DEAD_LETTERS, self._dead(ev, rejected.reason, rejected.error)
            return
        self.state.update(state)
        for t in ticks:
            ctx.timer_service().register_event_time_timer(t)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
        state = self.state.value()
        if state is None:
            return
        step = self.machine.on_tick(state, timestamp, self.tick_ms)
        if step.state is None:
            self.state.clear()
        else:
            self.state.update(step.state)
            for t in step.timers:
                ctx.timer_service().register_event_time_timer(t)
        key = ctx.get_current_key()
        now = _now()
        for feature_time, value in step.emissions:
            yield Row(key.encode(), self.codecs.feature_value(value, now), feature_time)
        for ev, rejected in step.rejected:
            yield types.DEAD_LETTERS, self._dead(ev, rejected.reason, rejected.error)

    def _dead(self, ev: Event, reason: str, error: str) -> Row:
        raw = ev.source or RawRecord(ev.topic, ev.partition, ev.offset, None, None, None)
        return dead_letter_row(self.codecs, dead_letter(self.job, reason, error, raw))


def dead_letter_row(codecs: JobCodecs, dl: DeadLetter) -> Row:
    return Row(dl["key"], codecs.dead_letter_value(dl), None)
