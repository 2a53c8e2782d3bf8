"""`tipoff dlq inspect | replay` on a real dead-letter topic."""

from __future__ import annotations

import subprocess
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from flink_jobs.tools import schemas
from tests.support.kafka_io import consume_all
from tests.support.realstack import RealStack
from udfs.serde import avsc


def _dead(job: str, reason: str, topic: str, offset: int, value: bytes) -> dict:
    return {
        "job": job,
        "reason": reason,
        "error": f"{reason.lower()} example",
        "topic": topic,
        "partition": 0,
        "offset": offset,
        "timestamp": None,
        "key": b"u1",
        "value": value,
    }


def test_inspect_counts_and_replay_sends_originals_once(real_stack: RealStack) -> None:
    """inspect groups by job/reason/topic; replay re-publishes each selected original once."""
    s = real_stack.fresh()
    schemas.register(s, 1, None, log=print)
    src = s.topics.user_interactions
    letters = [
        _dead("user-features", "INVALID", src, 7, b"\x00bad-1"),
        _dead("game-features", "INVALID", src, 7, b"\x00bad-1"),  # the same record, both jobs
        _dead("user-features", "INVALID", src, 9, b"\x00bad-2"),
        _dead("user-features", "LATE", src, 11, b"\x00late"),
    ]
    client = SchemaRegistryClient({"url": s.endpoints.registry_url, "timeout": 15})
    ser = AvroSerializer(
        client,
        avsc.canonical(avsc.load("ops/DeadLetter.avsc")),
        conf={"auto.register.schemas": False, "subject.name.strategy.type": "TOPIC"},
    )
    p = Producer({"bootstrap.servers": s.endpoints.bootstrap_servers})
    ctx = SerializationContext(s.topics.dead_letters, MessageField.VALUE)
    for dl in letters:
        p.produce(s.topics.dead_letters, key=dl["key"], value=ser(dl, ctx))
    assert p.flush(30) == 0

    env = {**real_stack.env, **s.topics.env()}
    run = [sys.executable, "-m", "flink_jobs.cli", "dlq"]
    out = subprocess.run([*run, "inspect"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "total 4 dead letter(s)" in out.stdout
    assert any(
        line.split()[:2] == ["user-features", "INVALID"] and line.split()[-1] == "2"
        for line in out.stdout.splitlines()
    )

    rep = subprocess.run(
        [*run, "replay", "--reason", "INVALID"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rep.returncode == 0, rep.stderr
    assert "replay: 2 record(s) selected (3 dead letters)" in rep.stdout
    sent = consume_all(s.endpoints.bootstrap_servers, src)
    assert sorted((m.key, m.value) for m in sent) == [(b"u1", b"\x00bad-1"), (b"u1", b"\x00bad-2")]
