"""decode (ProcessFunction): raw Kafka row -> Event, or a dead letter on the side output.

With udfs.flink.features, the only Flink-aware feature code: adapters from PyFlink functions
to the pure layer. Types are declared at every boundary (udfs.flink.types) so nothing
crosses as pickle except the Event itself.
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.common import Row
from pyflink.datastream import ProcessFunction, RuntimeContext

from udfs.features.families import BY_JOB
from udfs.flink import metrics, types
from udfs.flink.common import connect, dead_letter_row, now_ms
from udfs.flink.partition_clock import PartitionClock, owned_partitions
from udfs.serde.inputs import RawRecord
from udfs.serde.jobcodecs import JobCodecs, JobSchemas


def subtask(ctx: RuntimeContext) -> tuple[int, int]:
    """(index, parallelism) of this subtask. PyFlink 2.2's get_index_of_this_subtask calls a
    Java method Flink 2.0 moved to TaskInfo, so ask TaskInfo directly in thread mode."""
    java_ctx = getattr(ctx, "_runtime_context", None)
    if java_ctx is not None and hasattr(java_ctx, "getTaskInfo"):
        info = java_ctx.getTaskInfo()
        return int(info.getIndexOfThisSubtask()), int(info.getNumberOfParallelSubtasks())
    return ctx.get_index_of_this_subtask(), ctx.get_number_of_parallel_subtasks()


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
            owned_partitions(inputs, reader, readers), ends, idle_ms, now_ms()
        )

    def process_element(self, row: Row, ctx: ProcessFunction.Context) -> Any:
        assert self.codecs is not None
        started = time.perf_counter_ns()
        raw = _raw(row)
        self.metrics.count(metrics.EVENTS_IN, raw.topic)
        now = now_ms()
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
