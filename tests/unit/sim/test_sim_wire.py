"""The simulator's fast sending path (no Kafka, no JVM): its encoder writes the bytes
confluent-kafka's AvroSerializer writes; its producer processes split the emissions by
partition so every partition gets the same records in the same order as with one process;
records carry their event time as Kafka timestamp; live mode reports the rate it kept."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from flink_jobs.sim import Emission, SimConfig, Simulation, versions
from flink_jobs.tools import simreport, simsend, simulate
from flink_jobs.tools.simwire import WireEncoder, murmur2, partition_of
from udfs.serde import avsc, wire

START_MS = 1_700_000_000_000
TOPICS = {"game": "t.sports.game_events", "interaction": "t.sports.user_interactions"}
SCHEMA = {"game": "events/GameEvent.avsc", "interaction": "events/UserInteraction.avsc"}
# The AvroSerializer settings the simulator used before WireEncoder replaced it.
SERIALIZER_CONF = {
    "auto.register.schemas": False,
    "use.latest.version": False,
    "subject.name.strategy.type": "TOPIC",
}


@pytest.fixture(scope="module")
def mock_registry() -> tuple[SchemaRegistryClient, dict[tuple[str, int], tuple[str, int]]]:
    """An in-memory registry holding every version of both input schemas, oldest first,
    as `tipoff schemas register` registers them; and the simulator's encoder specs."""
    client = SchemaRegistryClient.new_client({"url": "mock://sim-wire"})
    for kind, rel in SCHEMA.items():
        for version in avsc.history(rel):
            client.register_schema(f"{TOPICS[kind]}-value", Schema(avsc.canonical(version), "AVRO"))
    specs = simulate.encoders(client, TOPICS, {TOPICS[k]: r for k, r in SCHEMA.items()}, "mixed")
    return client, specs


def _sample(emissions: list[Emission]) -> list[Emission]:
    """The first 1,500 emissions plus every game event: both topics, every event type,
    null and non-null values of each nullable field."""
    head = emissions[:1500]
    return head + [e for e in emissions[1500:] if e.kind == "game"]


def test_encoder_writes_the_avro_serializers_bytes(
    mock_registry: tuple[SchemaRegistryClient, dict[tuple[str, int], tuple[str, int]]],
    emissions: list[Emission],
) -> None:
    """For every (topic, writer version) the simulator writes, WireEncoder's bytes equal
    AvroSerializer's for the same records, byte for byte (same schema id, same header);
    version 1 leaves the version-2 fields out just as the serializer does."""
    client, specs = mock_registry
    assert set(specs) == {(k, n) for k in TOPICS for n in (1, 2)}
    ids = {schema_id for _text, schema_id in specs.values()}
    assert len(ids) == 4
    sample = _sample(emissions)
    nullable_seen: dict[tuple[str, str], set[bool]] = defaultdict(set)
    for (kind, n), (text, schema_id) in specs.items():
        ser = AvroSerializer(client, text, conf=SERIALIZER_CONF)
        ctx = SerializationContext(TOPICS[kind], MessageField.VALUE)
        enc = WireEncoder(json.loads(text), schema_id)
        checked = 0
        for em in sample:
            if em.kind != kind:
                continue
            expected = ser(em.record, ctx)
            assert enc(em.record) == expected, (kind, n, em.record)
            assert expected[:5] == b"\0" + schema_id.to_bytes(4, "big")
            checked += 1
            for name, value in em.record.items():
                nullable_seen[(kind, name)].add(value is None)
        assert checked > 100
    # Both null and a value were written for each optional field the simulator fills.
    for field in ("team_id", "player_id", "broadcast_network"):
        assert nullable_seen[("game", field)] == {True, False}, field
    for field in ("game_id", "team_id", "league", "dwell_ms", "app_version"):
        assert nullable_seen[("interaction", field)] == {True, False}, field


def test_encoder_equals_serializer_on_edge_values(
    mock_registry: tuple[SchemaRegistryClient, dict[tuple[str, int], tuple[str, int]]],
) -> None:
    """Non-ASCII text, empty strings, negative and large numbers, every nullable field null,
    extra keys the writer schema lacks: still the serializer's bytes, and they decode."""
    client, specs = mock_registry
    interaction = {
        "event_id": "ü-€-😀",
        "user_id": "",
        "session_hint": None,
        "action": "UNFOLLOW_TEAM",
        "game_id": None,
        "team_id": "nhl-mtl",
        "league": None,
        "content_id": None,
        "device": "TV",
        "dwell_ms": -2_147_483_648,
        "event_time": 9_007_199_254_740_993,
        "app_version": None,
        "locale": "fr-CA",
        "not_in_any_schema": 1,
    }
    game = {
        "event_id": "g-1",
        "game_id": "g",
        "league": "NHL",
        "event_type": "SCORE",
        "team_id": None,
        "player_id": None,
        "points": -1,
        "home_team_id": "h",
        "away_team_id": "a",
        "home_score": 2_147_483_647,
        "away_score": 0,
        "period": 63,
        "clock_seconds_remaining": 64,
        "sequence": -(2**63),
        "revision": 8191,
        "event_time": 0,
        "venue_id": None,
        "broadcast_network": None,
    }
    for (kind, _n), (text, schema_id) in specs.items():
        record = game if kind == "game" else interaction
        ser = AvroSerializer(client, text, conf=SERIALIZER_CONF)
        got = WireEncoder(json.loads(text), schema_id)(record)
        assert got == ser(record, SerializationContext(TOPICS[kind], MessageField.VALUE))
        parsed = wire.parse(json.loads(text))  # event_time as int epoch ms
        back = fastavro.schemaless_reader(io.BytesIO(got[5:]), parsed, parsed)
        assert isinstance(back, dict)
        assert back == {k: record[k] for k in back}


def test_encoder_bytes_decode_with_tipoffs_codec() -> None:
    """tipoff's own decoder (udfs.serde.wire.Codec) reads what WireEncoder writes, v1 and v2."""
    for rel in SCHEMA.values():
        history = avsc.history(rel)
        reader = wire.parse(history[-1])
        writers = {n + 1: wire.parse(v) for n, v in enumerate(history)}
        codec = wire.Codec(reader, None, writers.__getitem__)
        sim = Simulation(SimConfig(seed=2, start_ms=START_MS, total_events=600))
        kind = "game" if "Game" in rel else "interaction"
        for n, schema in enumerate(history, start=1):
            enc = WireEncoder(schema, n)
            for em in sim:
                if em.kind != kind:
                    continue
                got = codec.decode(enc(em.record))
                fields = {f["name"] for f in schema["fields"]}
                assert got == {k: (v if k in fields else None) for k, v in em.record.items()}


def test_murmur2_matches_kafkas_test_vectors() -> None:
    """Kafka's own UtilsTest values for Utils.murmur2 (what librdkafka's murmur2_random uses)."""
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, expected in cases.items():
        assert murmur2(key) == expected, key
    assert all(0 <= partition_of(k, 7) < 7 for k in cases)


class FakeProducer:
    """Stands in for confluent_kafka.Producer: places keys as librdkafka's murmur2_random
    does and keeps each partition's records in produce order."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions
        self.log: dict[tuple[str, int], list[tuple[bytes, bytes, int]]] = defaultdict(list)

    def produce(self, topic: str, key: bytes, value: bytes, timestamp: int, **_: Any) -> None:
        self.log[(topic, partition_of(key, self.partitions[topic]))].append((key, value, timestamp))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0


def _job(cfg: SimConfig, mode: str, shard: simsend.Shard | None) -> simsend.Job:
    specs = {
        (kind, n): (avsc.canonical(avsc.history(SCHEMA[kind])[n - 1]), 10 * n + len(kind))
        for kind in TOPICS
        for n in versions.used_by(mode)
    }
    return simsend.Job("unused:9092", TOPICS, specs, cfg, False, mode, None, shard)


def _send(
    monkeypatch: pytest.MonkeyPatch, job: simsend.Job, partitions: dict[str, int]
) -> tuple[dict[tuple[str, int], list[tuple[bytes, bytes, int]]], simreport.SendReport]:
    fake = FakeProducer(partitions)
    monkeypatch.setattr(simsend, "producer", lambda _bootstrap: fake)
    report = simsend.send(job, lambda _r: False)
    return dict(fake.log), report


@pytest.mark.parametrize("count", [2, 3, 4])
def test_shards_split_by_partition_and_keep_each_partitions_order(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """`count` producer processes each send whole partitions, disjoint and complete: every
    partition holds the same records in the same order as a single-process run (hence the
    same offsets), and the merged report equals the single run's."""
    cfg = SimConfig(seed=11, start_ms=START_MS, total_events=6_000, duplicate_share=0.02)
    partitions = {TOPICS["game"]: 3, TOPICS["interaction"]: 4}
    single, one_report = _send(monkeypatch, _job(cfg, "mixed", None), partitions)
    merged: dict[tuple[str, int], list[tuple[bytes, bytes, int]]] = {}
    total = simreport.SendReport()
    for i in range(count):
        log, report = _send(
            monkeypatch, _job(cfg, "mixed", simsend.Shard(i, count, partitions)), partitions
        )
        assert all(p % count == i for _t, p in log), "a shard sent another's partition"
        assert not set(log) & set(merged)
        merged.update(log)
        total.merge(report)
    assert merged == single
    assert total.per_topic == one_report.per_topic
    assert total.per_version == one_report.per_version
    assert (total.late, total.duplicates, total.corrections) == (
        one_report.late,
        one_report.duplicates,
        one_report.corrections,
    )
    assert (total.games, total.users, total.leagues) == (
        one_report.games,
        one_report.users,
        one_report.leagues,
    )


def test_single_process_is_deterministic_and_stamps_event_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same seed gives the same records in the same per-partition order, and each
    record's Kafka timestamp is its payload's event_time."""
    cfg = SimConfig(seed=5, start_ms=START_MS, total_events=3_000)
    partitions = {TOPICS["game"]: 2, TOPICS["interaction"]: 3}
    a, _ = _send(monkeypatch, _job(cfg, "2", None), partitions)
    b, _ = _send(monkeypatch, _job(cfg, "2", None), partitions)
    assert a == b
    expected = [
        em
        for em in Simulation(cfg)  # the emission order, per partition
    ]
    by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)
    for em in expected:
        topic = TOPICS[em.kind]
        p = partition_of(em.key.encode(), partitions[topic])
        by_partition[(topic, p)].append(em.record["event_time"])
    assert {tp: [ts for _k, _v, ts in recs] for tp, recs in a.items()} == by_partition
    game = json.loads(_job(cfg, "2", None).schemas[("game", 2)][0])
    parsed = fastavro.parse_schema(game)
    for key, value, ts in a[(TOPICS["game"], 0)][:50]:
        rec = fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed, parsed)
        assert isinstance(rec, dict)
        assert int(rec["event_time"].timestamp() * 1000) == ts
        assert rec["game_id"].encode() == key


def test_live_report_says_when_the_sender_fell_behind() -> None:
    """The achieved rate is the timeline's records over the wall time they took; more than
    3 % under the schedule is a warning naming what to do."""
    kept = simreport.SendReport(
        target_rate=1000, timeline_s=60, window_sent=60_300, window_wall_s=59.9, max_lag_ms=40
    )
    kept.per_topic["x"] = 60_300
    assert kept.achieved_rate == pytest.approx(1005)
    assert not kept.behind and kept.warning() is None
    assert any("achieved 1005.0/s of 1005.0/s scheduled (100.0%" in line for line in kept.lines())
    slow = simreport.SendReport(
        target_rate=1000, timeline_s=60, window_sent=60_000, window_wall_s=75, max_lag_ms=15_000
    )
    assert slow.achieved_rate == pytest.approx(800)
    assert slow.behind
    warning = slow.warning()
    assert warning is not None
    assert "fell behind" in warning and "800" in warning and "--processes" in warning
    fast = simreport.SendReport()  # as fast as possible: no live line, no warning
    assert fast.warning() is None and not any("live:" in line for line in fast.lines())
