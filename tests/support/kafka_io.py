"""Test-side Kafka I/O, independent of tipoff's own decoding: raw reads up to the end
offsets, Avro values decoded with fastavro and the registry's writer schemas, and the
framing for the records tests write themselves."""

from __future__ import annotations

import io
import json
import struct
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fastavro
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient


@dataclass(frozen=True)
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def coords(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


def consume_all(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[Msg]:
    """Every committed record of `topic` (read_committed), in partition/offset order."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[Msg] = []
        pos = dict.fromkeys(parts, 0)
        deadline = time.monotonic() + timeout_s
        while any(pos[p] < ends[p] for p in parts) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                # A transactional topic ends with commit markers no message shows: the
                # consumer's position moves past them.
                for tp in c.position([TopicPartition(topic, p) for p in parts]):
                    pos[tp.partition] = max(pos[tp.partition], tp.offset)
                continue
            pos[m.partition()] = m.offset() + 1
            out.append(
                Msg(
                    topic,
                    m.partition(),
                    m.offset(),
                    m.key(),
                    m.value(),
                    m.timestamp()[1],
                    tuple(m.headers() or ()),
                )
            )
        behind = {p: (pos[p], ends[p]) for p in parts if pos[p] < ends[p]}
        assert not behind, f"{topic}: not read to the end in {timeout_s}s: {behind}"
        return sorted(out, key=lambda m: (m.partition, m.offset))
    finally:
        c.close()


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return int(v.timestamp() * 1000)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


class Values:
    """Decode Confluent-framed Avro with the writer schema, timestamps as epoch ms."""

    def __init__(self, registry_url: str) -> None:
        self.client = SchemaRegistryClient({"url": registry_url, "timeout": 15})
        self.schemas: dict[int, Any] = {}

    def __call__(self, value: bytes | None) -> dict[str, Any] | None:
        if value is None:
            return None
        (schema_id,) = struct.unpack(">I", value[1:5])
        if schema_id not in self.schemas:
            text = self.client.get_schema(schema_id).schema_str
            self.schemas[schema_id] = fastavro.parse_schema(json.loads(text))
        return _plain(fastavro.schemaless_reader(io.BytesIO(value[5:]), self.schemas[schema_id]))


def frame(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for key, value in records:
        p.produce(topic, key=key, value=value)
    assert p.flush(30) == 0
