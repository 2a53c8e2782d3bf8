"""An unbounded run whose inputs each have a partition that never receives a record still
emits its ticks: once that partition has been silent for the idleness timeout it stops
holding the watermark, which then follows the partitions that do receive records. Without
that, the watermark would stay at its minimum and no feature record would ever appear.

The run then stops with a savepoint (no drain: keys mid-life, events waiting, game tiles),
and no byte of it names a Python module: state holds builtins only, so renaming or moving
code under udfs/ cannot break restoring it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from flink_jobs.sim import SimConfig, Simulation
from flink_jobs.tools import schemas
from tests.support.e2e import LiveJob
from tests.support.kafka_io import frame
from tests.support.realstack import RealStack
from udfs.serde import avsc
from udfs.serde.registry import Registry

PARTITIONS = 3
SILENT = PARTITIONS - 1  # never written
IDLE_MS = 3_000
OUT_OF_ORDER_MS = 2_000
RATE = 60  # events per second, live (event time = wall clock)


def _latest_feature_time(bootstrap: str, topic: str) -> int | None:
    """The largest feature_time header in `topic` right now."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"idle-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        latest = None
        for p in parts:
            _, end = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if end <= 0:
                continue
            start = max(0, end - 50)
            c.assign([TopicPartition(topic, p, start)])
            read = start
            deadline = time.monotonic() + 10
            while read < end and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                read = m.offset() + 1
                for k, v in m.headers() or ():
                    if k == "feature_time":
                        t = int(v)
                        latest = t if latest is None else max(latest, t)
        return latest
    finally:
        c.close()


def _no_code_named(savepoint: str) -> None:
    folder = Path(savepoint.removeprefix("file:"))
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files and sum(p.stat().st_size for p in files) > 10_000, files
    for p in files:
        data = p.read_bytes()
        for name in (b"udfs.", b"flink_jobs.", b"copyreg", b"__main__"):
            assert name not in data, f"{p} names {name!r}"


@pytest.mark.integration
@pytest.mark.slow
def test_a_partition_that_never_receives_does_not_stop_the_ticks(
    real_stack: RealStack, tmp_path: Path
) -> None:
    s = real_stack.fresh()
    schemas.register(s, PARTITIONS, None, log=print)
    registry = Registry(s.endpoints.registry_url)
    writers = {}
    for kind, topic in (
        ("game", s.topics.game_events),
        ("interaction", s.topics.user_interactions),
    ):
        schema = avsc.load(s.topics.schema_of()[topic])
        sid = registry.id_of(f"{topic}-value", avsc.canonical(schema))
        assert sid is not None
        writers[kind] = (topic, sid, schema)
    job = LiveJob(
        real_stack,
        s,
        tmp_path,
        (
            "--idleness-ms",
            str(IDLE_MS),
            "--out-of-orderness-ms",
            str(OUT_OF_ORDER_MS),
            "--delivery-guarantee",
            "at-least-once",
            "--checkpoint-interval",
            "2000",
        ),
    ).start()
    producer = Producer({"bootstrap.servers": s.endpoints.bootstrap_servers, "linger.ms": 5})
    cfg = SimConfig(
        seed=5,
        users=200,
        games=3,
        late_share=0,
        duplicate_share=0,
        start_ms=int(time.time() * 1000),
        duration_ms=120_000,
        total_events=RATE * 120,
    )
    try:
        started = time.monotonic()
        seen = {s.topics.user_features: None, s.topics.game_features: None}
        sent_max = 0
        for n, em in enumerate(Simulation(cfg)):
            now = int(time.time() * 1000)
            if em.emit_ms > now:  # live: send when the record's moment comes
                time.sleep((em.emit_ms - now) / 1000)
            topic, sid, schema = writers[em.kind]
            record = {**em.record, "event_time": min(em.record["event_time"], now)}
            producer.produce(
                topic,
                key=em.key.encode(),
                value=frame(sid, schema, record),
                partition=n % SILENT,  # partitions 0 and 1 only
                timestamp=record["event_time"],
            )
            sent_max = max(sent_max, record["event_time"])
            producer.poll(0)
            elapsed = time.monotonic() - started
            if n % RATE == 0 and elapsed > IDLE_MS / 1000 + 15:
                producer.flush(10)
                for out in seen:
                    seen[out] = _latest_feature_time(s.endpoints.bootstrap_servers, out)
                # Ticks up to the others' watermark (largest event time - bound) are out,
                # allowing a few seconds for a tick to pass through the job.
                horizon = sent_max - OUT_OF_ORDER_MS - 1_000 - 8_000
                latest = [t for t in seen.values() if t is not None]
                if len(latest) == len(seen) and min(latest) >= horizon:
                    print(f"ticks within {sent_max - min(latest):,} ms of the input")
                    producer.flush(10)
                    _no_code_named(job.stop(drain=False, savepoints=tmp_path / "savepoints"))
                    return
            if elapsed > 100:
                break
        raise AssertionError(
            f"no recent ticks with partition {SILENT} silent: latest feature_time per topic "
            f"{seen}, latest event sent {sent_max}\n" + job.output()[-3000:]
        )
    finally:
        producer.flush(10)
        job.kill()
