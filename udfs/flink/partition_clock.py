"""Per-partition event-time progress, computed where the events are decoded.

Event time is inside the Avro payload, so Flink's source cannot watermark each Kafka
partition itself; a watermark assigned after decoding sees all partitions of a reader
interleaved, and on a backlog most events of a lagging partition would land behind it
(measured: 72% of a 253k backlog). PartitionClock restores per-partition semantics: the
watermark basis is the minimum over the reader's live partitions of each one's largest
event time. Finished (bounded) and idle partitions stop holding it back.

Pure Python (no pyflink import) so it is unit-tested without a JVM; the decode function
calls it with the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

MIN = -(2**63)
TopicPartition = tuple[str, int]


def java_string_hash(s: str) -> int:
    """java.lang.String.hashCode (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def split_owner(topic: str, partition: int, readers: int) -> int:
    """The source reader Flink's KafkaSourceEnumerator assigns a partition to."""
    start = ((java_string_hash(topic) * 31) & 0x7FFFFFFF) % readers
    return (start + partition) % readers


def owned_partitions(
    partitions: Mapping[str, int], reader: int, readers: int
) -> set[TopicPartition]:
    return {
        (topic, p)
        for topic, count in partitions.items()
        for p in range(count)
        if split_owner(topic, p, readers) == reader
    }


class PartitionClock:
    def __init__(
        self,
        owned: Iterable[TopicPartition],
        end_offsets: Mapping[TopicPartition, int] | None,
        idle_ms: int,
        start_ms: int,
    ) -> None:
        self.owned = set(owned)
        self.end = dict(end_offsets or {})
        self.idle_ms = idle_ms
        self.start_ms = start_ms
        self.max_time: dict[TopicPartition, int] = {}
        self.last_seen: dict[TopicPartition, int] = {}
        self.finished = {tp for tp in self.owned if self.end.get(tp, 1) <= 0}
        self.basis = MIN

    def observe(self, tp: TopicPartition, offset: int, event_time: int, now_ms: int) -> int:
        """Record one event; returns the current basis (monotone)."""
        self.owned.add(tp)  # a partition the owner formula did not predict still counts
        if event_time > self.max_time.get(tp, MIN):
            self.max_time[tp] = event_time
        self.last_seen[tp] = now_ms
        end = self.end.get(tp)
        if end is not None and offset >= end - 1:
            self.finished.add(tp)
        else:
            self.finished.discard(tp)
        return self.advance(now_ms)

    def advance(self, now_ms: int) -> int:
        active = []
        for tp in self.owned:
            if tp in self.finished:
                continue
            seen = self.last_seen.get(tp, self.start_ms)
            if now_ms - seen > self.idle_ms:
                continue  # idle: it must not hold event time back forever
            if tp not in self.max_time:
                return self.basis  # a live partition has not spoken yet: hold
            active.append(self.max_time[tp])
        if active:
            candidate = min(active)
        elif self.max_time:
            candidate = max(self.max_time.values())
        else:
            return self.basis
        self.basis = max(self.basis, candidate)
        return self.basis
