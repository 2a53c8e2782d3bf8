"""`tipoff tail TOPIC`: read any tipoff topic through the registry, print JSON lines."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from flink_jobs.settings import Endpoints
from flink_jobs.tools.schemas import registry


@dataclass(frozen=True)
class TailRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: dict[str, Any] | None  # None: a tombstone
    schema_id: int | None
    error: str | None = None  # set when the value could not be decoded

    def to_json(self) -> str:
        return json.dumps(
            {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "timestamp": self.timestamp_ms,
                "key": None if self.key is None else self.key.decode("utf-8", "backslashreplace"),
                "schema_id": self.schema_id,
                "value": self.value,
                **({"error": self.error} if self.error else {}),
            },
            default=_json_default,
            sort_keys=False,
        )


def _json_default(o: object) -> object:
    if isinstance(o, datetime):
        return o.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(o, bytes):
        return base64.b64encode(o).decode()
    raise TypeError(f"cannot print {type(o).__name__} as JSON")


def consumer(bootstrap: str, from_beginning: bool) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"tipoff-tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
            # Exactly-once outputs: only committed transactions are features.
            "isolation.level": "read_committed",
            "log_level": 3,
        }
    )


def _wait_for_partitions(c: Consumer, topic: str) -> None:
    md = c.list_topics(topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise KafkaException(
            f"topic {topic!r} does not exist on this cluster; "
            "create tipoff's topics with `tipoff schemas register`"
        )


def records(
    ep: Endpoints,
    topic: str,
    from_beginning: bool = False,
    max_records: int | None = None,
    idle_timeout_s: float | None = None,
) -> Iterator[TailRecord]:
    """Decoded records of `topic`; stops after `max_records` or `idle_timeout_s` without one."""
    c = consumer(ep.bootstrap_servers, from_beginning)
    deser = AvroDeserializer(registry(ep.registry_url))
    try:
        _wait_for_partitions(c, topic)
        c.subscribe([topic])
        seen, last = 0, time.monotonic()
        while max_records is None or seen < max_records:
            msg = c.poll(0.5)
            if msg is None:
                if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                    return
                continue
            if msg.error():
                raise KafkaException(msg.error())
            last = time.monotonic()
            seen += 1
            yield decode(msg, deser)
    finally:
        c.close()


def decode(msg: Any, deser: AvroDeserializer) -> TailRecord:
    """One consumed message, its value decoded through the registry (errors kept, not raised)."""
    raw = msg.value()
    schema_id = int.from_bytes(raw[1:5], "big") if raw and len(raw) >= 5 and raw[0] == 0 else None
    value, error = None, None
    if raw is not None:
        try:
            # typed `dict | object | None`: every tipoff value schema is a record, so a dict
            decoded = deser(raw, SerializationContext(msg.topic(), MessageField.VALUE))
            value = cast("dict[str, Any] | None", decoded)
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
    return TailRecord(
        msg.topic(),
        msg.partition(),
        msg.offset(),
        msg.timestamp()[1],
        msg.key(),
        value,
        schema_id,
        error,
    )


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermarks per partition (read_committed: the last stable offset)."""
    c = consumer(bootstrap, True)
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in md.partitions
        }
    finally:
        c.close()
