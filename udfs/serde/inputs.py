"""From a raw Kafka record to a feature-logic Event, or to a dead letter saying why not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from udfs.features.common import Event
from udfs.serde.validate import problems
from udfs.serde.wire import Codec, DecodeFailure

DeadLetter = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.topic, self.partition, self.offset, self.timestamp, self.key, self.value)
        return (RawRecord, fields)


def dead_letter(job: str, reason: str, error: str, raw: RawRecord) -> DeadLetter:
    """A DeadLetter record (avro_schemas/ops/DeadLetter.avsc) keeping the original bytes."""
    return {
        "job": job,
        "reason": reason,
        "error": error[:2000],
        "topic": raw.topic,
        "partition": raw.partition,
        "offset": raw.offset,
        "timestamp": raw.timestamp,
        "key": raw.key,
        "value": raw.value,
    }


@dataclass(frozen=True)
class InputDecoder:
    """Decodes and validates the records of the topics one job reads."""

    job: str
    codecs: Mapping[str, Codec]  # topic -> codec with that job's reader schema
    kinds: Mapping[str, str]  # topic -> "game" | "interaction"

    def __call__(self, raw: RawRecord, now_ms: int) -> Event | DeadLetter:
        kind = self.kinds[raw.topic]
        try:
            record = self.codecs[raw.topic].decode(raw.value)
        except DecodeFailure as e:
            return dead_letter(self.job, e.reason, e.error, raw)
        broken = problems(kind, record, now_ms)
        if broken:
            return dead_letter(self.job, "INVALID", "; ".join(broken), raw)
        return Event(record["event_time"], raw.topic, raw.partition, raw.offset, kind, record, raw)
