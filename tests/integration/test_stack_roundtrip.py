"""The local stack end to end: topics, schemas, the simulator's records read back."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.validation import validate

from flink_jobs.sim import SimConfig
from flink_jobs.stack import health
from flink_jobs.tools import schemas, simreport, simulate, tail
from tests.support.e2e import tipoff
from tests.support.kafka_io import consume_all
from tests.support.realstack import RealStack
from udfs.serde import avsc


def _read_all(s, topic: str, expected: int) -> list[tail.TailRecord]:
    return list(tail.records(s.endpoints, topic, True, expected, idle_timeout_s=20))


def test_simulated_events_read_back_valid_and_counted(real_stack: RealStack) -> None:
    """10,000+ simulated events land in their topics, each decodes with its registered schema."""
    s = real_stack.fresh()
    ids = schemas.register(s, 3, None, log=print)
    cfg = simulate.plan(SimConfig(seed=7), 0, int(time.time() * 1000), None, 12_000)
    report = simulate.run(s, cfg, live=False, log=print, progress=False)
    assert not report.failed
    assert report.sent >= 12_000
    for topic, rel in (
        (s.topics.game_events, "events/GameEvent.avsc"),
        (s.topics.user_interactions, "events/UserInteraction.avsc"),
    ):
        parsed = fastavro.parse_schema(avsc.load(rel))
        got = _read_all(s, topic, report.per_topic[topic])
        assert len(got) == report.per_topic[topic] > 0
        assert {r.schema_id for r in got} == {ids[f"{topic}-value"]}
        for r in got:
            assert r.error is None and r.value is not None
            assert validate(r.value, parsed, raise_errors=True)
            entity = r.value["game_id"] if topic == s.topics.game_events else r.value["user_id"]
            assert r.key == entity.encode()
    # nothing beyond what was sent: the end offsets add up to the report's counts
    for topic, n in report.per_topic.items():
        assert sum(tail.end_offsets(s.endpoints.bootstrap_servers, topic).values()) == n


def _partition_logs(s, report: simreport.SendReport) -> dict[tuple[str, int], list[tuple]]:
    """Per input partition, in offset order: (key, writer version, Avro body, timestamp)."""
    client = schemas.registry(s.endpoints.registry_url)
    version_of: dict[int, int] = {}
    out: dict[tuple[str, int], list[tuple]] = {}
    kinds = {s.topics.game_events: "events/GameEvent.avsc"}
    for topic in (s.topics.game_events, s.topics.user_interactions):
        rel = kinds.get(topic, "events/UserInteraction.avsc")
        fields = [[f["name"] for f in v["fields"]] for v in avsc.history(rel)]
        got = consume_all(s.endpoints.bootstrap_servers, topic)
        assert len(got) == report.per_topic[topic] > 0
        for m in got:
            schema_id = int.from_bytes(m.value[1:5], "big")
            if schema_id not in version_of:
                text = client.get_schema(schema_id).schema_str  # the registry's key order
                names = [f["name"] for f in json.loads(text)["fields"]]
                version_of[schema_id] = fields.index(names) + 1
            row = (m.key, version_of[schema_id], m.value[5:], m.timestamp)
            out.setdefault((topic, m.partition), []).append(row)
    return out


def test_processes_write_each_partition_as_one_process_does(real_stack: RealStack) -> None:
    """`--processes 3` (spawned producers, each owning whole partitions) leaves every
    partition with the same records in the same order as one process: same keys, writer
    versions, Avro bytes and Kafka timestamps, and each timestamp is the record's event_time
    (CreateTime)."""
    cfg = simulate.plan(SimConfig(seed=9), 0, int(time.time() * 1000), None, 8_000)
    logs = []
    for processes in (1, 3):
        s = real_stack.fresh()
        schemas.register(s, 4, None, log=print)
        report = simulate.run(
            s,
            cfg,
            live=False,
            log=print,
            progress=False,
            schema_version="mixed",
            processes=processes,
        )
        assert not report.failed and report.processes == processes
        logs.append(_partition_logs(s, report))
    assert list(logs[0].values()) == list(logs[1].values())
    assert {p for _t, p in logs[0]} == {0, 1, 2, 3}
    assert {row[1] for rows in logs[0].values() for row in rows} == {1, 2}
    # The timestamp is the payload's event_time: read back through `tail`'s decoder.
    s = real_stack.fresh()
    schemas.register(s, 2, None, log=print)
    report = simulate.run(s, cfg, live=False, log=print, progress=False)
    for topic in (s.topics.game_events, s.topics.user_interactions):
        for r in _read_all(s, topic, report.per_topic[topic]):
            assert r.value is not None  # event_time decodes as a datetime
            assert r.timestamp_ms == round(r.value["event_time"].timestamp() * 1000)


def test_live_processes_report_the_rate_kept(real_stack: RealStack) -> None:
    """Live with two producer processes at a modest rate: the report says what was kept."""
    s = real_stack.fresh()
    schemas.register(s, 4, None, log=print)
    cfg = simulate.plan(SimConfig(seed=4, late_share=0.0), 400, int(time.time() * 1000), 12, None)
    report = simulate.run(
        s, cfg, live=True, log=print, progress=False, processes=2, target_rate=400
    )
    print("\n".join(report.lines()))
    assert not report.failed
    assert report.timeline_s == 12 and report.target_rate == 400
    assert 0.95 * 400 <= report.scheduled_rate <= 1.05 * 400
    assert not report.behind, report.warning()
    assert any("live: achieved" in line for line in report.lines())


def test_registry_rejects_incompatible_change_and_check_fails(
    real_stack: RealStack, tmp_path: Path
) -> None:
    """`register` seeds each subject with the release history; a GameEvent field without a
    default is refused (409) and `schemas check` exits 1 naming it, then 0 with a default."""
    s = real_stack.fresh()
    schemas.register(s, 1, None, log=print)
    client = schemas.registry(s.endpoints.registry_url)
    assert client.get_versions(f"{s.topics.user_interactions}-value") == [1, 2]
    assert client.get_versions(f"{s.topics.game_features}-value") == [1]

    changed = tmp_path / "avro_schemas"
    shutil.copytree(avsc.SCHEMAS_DIR, changed)
    game = json.loads((changed / "events/GameEvent.avsc").read_text())
    assert any(f["name"] == "venue_id" for f in game["fields"])  # version 2 has it already
    game["fields"].append({"name": "attendance", "type": "int", "doc": "Spectators."})
    (changed / "events/GameEvent.avsc").write_text(json.dumps(game))

    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(f"{s.topics.game_events}-value", Schema(json.dumps(game), "AVRO"))
    assert refused.value.http_status_code == 409

    env = {**real_stack.env, **s.topics.env()}
    bad = tipoff(env, "schemas", "check", "--schemas-dir", str(changed))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "GameEvent.attendance" in bad.stdout
    assert "INCOMPATIBLE" in bad.stdout
    assert f"{s.topics.game_events}-value" in bad.stderr

    game["fields"][-1] = {"name": "attendance", "type": "int", "default": 0, "doc": "Spectators."}
    (changed / "events/GameEvent.avsc").write_text(json.dumps(game))
    good = tipoff(env, "schemas", "check", "--schemas-dir", str(changed))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.count("OK ") == 5


def test_down_then_up_keeps_topics_records_and_schemas(real_stack: RealStack) -> None:
    """Stopping and restarting the stack keeps topics, their records and registered schemas."""
    if real_stack.stack is None:
        pytest.skip("external services: the test does not stop what it did not start")
    s = real_stack.fresh()
    ids = schemas.register(s, 2, None, log=print)
    cfg = simulate.plan(SimConfig(seed=3), 0, int(time.time() * 1000), None, 500)
    report = simulate.run(s, cfg, live=False, log=print, progress=False)
    before = Counter(report.per_topic)

    assert set(real_stack.stack.down()) == {"kafka", "registry"}
    assert not health.kafka_ok(s.endpoints.bootstrap_servers)
    assert not health.registry_ok(s.endpoints.registry_url)
    real_stack.stack.up(real_stack.env)

    client = schemas.registry(s.endpoints.registry_url)
    for subj, schema_id in ids.items():
        assert client.get_latest_version(subj).schema_id == schema_id
    md = health.admin(s.endpoints.bootstrap_servers).list_topics(timeout=10).topics
    for topic in s.topics.all():
        assert len(md[topic].partitions) == 2
    for topic, n in before.items():
        assert len(_read_all(s, topic, n)) == n


def test_cli_up_twice_status_and_tail(real_stack: RealStack) -> None:
    """A second `stack up` says it is running and exits 0; status and tail work from the CLI."""
    if real_stack.stack is None:
        pytest.skip("external services")
    again = tipoff(
        real_stack.env, "stack", "up", "--kafka-port", str(real_stack.settings.stack.kafka_port)
    )
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    status = tipoff(real_stack.env, "stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "UP" in status.stdout and "pid" in status.stdout

    s = real_stack.fresh()
    schemas.register(s, 1, None, log=print)
    cfg = simulate.plan(SimConfig(seed=1), 0, int(time.time() * 1000), None, 200)
    simulate.run(s, cfg, live=False, log=print, progress=False)
    out = tipoff(
        real_stack.env,
        "tail",
        s.topics.game_events,
        "--from-beginning",
        "--max",
        "5",
        "--timeout",
        "20",
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 5
    assert all(line["value"]["game_id"] == line["key"] for line in lines)
