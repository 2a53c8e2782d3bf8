"""`tipoff simulate`: write the simulated live-sports feed to Kafka through AvroSerializer.

The events come from the pure generator in udfs/sim; this module only decides where the
timeline lies (live: now onwards, emitted at wall-clock pace; as fast as possible: laid in
the past so it ends when the run starts), serializes and sends.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import islice

from confluent_kafka import KafkaError, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from flink_jobs.settings import Settings
from flink_jobs.stack.health import admin
from flink_jobs.tools.schemas import registry, subject
from udfs.serde import avsc
from udfs.sim import Emission, SimConfig, Simulation, versions

Log = Callable[[str], None]
FAST_EVENTS_PER_SECOND = 50  # event-time density of an as-fast-as-possible run without --duration


class SimulateError(RuntimeError):
    pass


@dataclass
class SendReport:
    per_topic: Counter[str] = field(default_factory=Counter)
    per_version: Counter[int] = field(default_factory=Counter)  # records per schema version
    late: int = 0
    duplicates: int = 0
    corrections: int = 0
    games: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    leagues: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def sent(self) -> int:
        return sum(self.per_topic.values())

    def lines(self) -> list[str]:
        rate = self.sent / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"{'interrupted: ' if self.interrupted else ''}sent {self.sent} records "
            f"in {self.seconds:.1f}s ({rate:,.0f}/s)"
        ]
        out += [f"  {topic:<28} {n}" for topic, n in sorted(self.per_topic.items())]
        if self.per_version:
            versions_sent = ", ".join(f"v{v} {n}" for v, n in sorted(self.per_version.items()))
            out.append(f"  schema versions: {versions_sent}")
        leagues = ", ".join(f"{k} {v}" for k, v in sorted(self.leagues.items()))
        out.append(f"  games {len(self.games)} ({leagues}), users {len(self.users)}")
        out.append(
            f"  late {self.late}, duplicates {self.duplicates}, corrections {self.corrections}"
        )
        if self.failed:
            out.append(f"  FAILED deliveries {len(self.failed)}: first: {self.failed[0]}")
        return out


def plan(
    cfg: SimConfig, rate: float, now_ms: int, duration_s: float | None, events: int | None
) -> SimConfig:
    """Place the timeline: live from now at `rate` events/s, or in the past when rate is 0."""
    if rate < 0:
        raise SimulateError(f"--rate must be >= 0 (0 = as fast as possible), got {rate}")
    if duration_s is None and events is None:
        duration_s = 60.0
    if events is None:
        events = int((rate or FAST_EVENTS_PER_SECOND) * (duration_s or 0))
    if duration_s is None:
        # Live: the events at the asked rate. As fast as possible: at least a minute of
        # event time, so games get going even in small runs.
        duration_s = events / rate if rate > 0 else max(60.0, events / FAST_EVENTS_PER_SECOND)
    if events <= 0 or duration_s <= 0:
        raise SimulateError("nothing to simulate: --events and --duration must be positive")
    duration_ms = int(duration_s * 1000)
    # As fast as possible: the timeline ends when the run starts, so no event time is ever
    # ahead of the wall clock.
    start = now_ms if rate > 0 else now_ms - duration_ms
    try:
        return replace(cfg, start_ms=start, duration_ms=duration_ms, total_events=events)
    except ValueError as e:
        raise SimulateError(f"cannot simulate that: {e}") from e


def _check_topics(s: Settings) -> None:
    topics = admin(s.endpoints.bootstrap_servers).list_topics(timeout=10).topics
    missing = [t for t in (s.topics.game_events, s.topics.user_interactions) if t not in topics]
    if missing:
        raise SimulateError(
            f"topic(s) {', '.join(missing)} do not exist on {s.endpoints.bootstrap_servers}; "
            "run `tipoff schemas register` first"
        )


def producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
            # The Java client's partitioner: a key lands on the same partition whichever
            # client wrote it.
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 200_000,
            # Warnings such as "coordinator load in progress" on a fresh broker are retried.
            "log_level": 3,
        }
    )


def serializers(
    client: SchemaRegistryClient, topic_of: dict[str, str], schema_of: dict[str, str], mode: str
) -> dict[tuple[str, int], AvroSerializer]:
    """An AvroSerializer per (kind, schema version) `mode` can use; version n is the n-th
    distinct version of the topic's .avsc (avsc.history: releases/ oldest first, then the
    current file), as `tipoff schemas register` registers them. Each must be registered."""
    conf = {
        "auto.register.schemas": False,
        "use.latest.version": False,
        # `<topic>-value` subjects. confluent-kafka 2.16's default strategy first asks the
        # registry for Confluent-only "associations", which Apicurio does not serve.
        "subject.name.strategy.type": "TOPIC",
    }
    out = {}
    for kind, topic in topic_of.items():
        rel = schema_of[topic]
        history = avsc.history(rel)
        for n in versions.used_by(mode):
            if n > len(history):
                raise SimulateError(f"{rel} has no version {n} (it has {len(history)})")
            text = avsc.canonical(history[n - 1])
            try:
                client.lookup_schema(subject(topic), Schema(text, "AVRO"))
            except SchemaRegistryError as e:
                if e.http_status_code != 404:
                    raise
                raise SimulateError(
                    f"version {n} of {rel} is not registered under {subject(topic)}; "
                    "run `tipoff schemas register` (it registers every version)"
                ) from e
            # Non-strict (the default): fields the writer schema lacks are left out.
            out[(kind, n)] = AvroSerializer(client, text, conf=conf)
    return out


def run(
    s: Settings,
    cfg: SimConfig,
    live: bool,
    log: Log,
    progress: bool = True,
    schema_version: str = str(versions.CURRENT_VERSION),
    only: slice | None = None,
) -> SendReport:
    """Send the simulation; `schema_version` is one of versions.MODES: every record at
    version 1 or 2 of its schema, or "mixed", each at the version its producer writes.
    `only` sends just those positions of the emission sequence (duplicates included), e.g.
    the first half of a run now and the rest later."""
    if schema_version not in versions.MODES:
        raise SimulateError(
            f"--schema-version must be one of {', '.join(versions.MODES)}, got {schema_version}"
        )
    _check_topics(s)
    client = registry(s.endpoints.registry_url)
    topic_of = {"game": s.topics.game_events, "interaction": s.topics.user_interactions}
    ser = serializers(client, topic_of, s.topics.schema_of(), schema_version)
    ctx = {k: SerializationContext(t, MessageField.VALUE) for k, t in topic_of.items()}
    prod = producer(s.endpoints.bootstrap_servers)
    report = SendReport()

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            report.failed.append(str(err))

    try:
        sim = Simulation(cfg)
    except ValueError as e:
        raise SimulateError(f"cannot simulate that: {e}") from e
    t0, next_progress = time.monotonic(), time.monotonic() + 2.0
    try:
        part = sim if only is None else islice(sim, only.start, only.stop, only.step)
        for em in part:
            if live:
                _sleep_until(em.emit_ms)
            version = versions.choose(schema_version, em.writer_version)
            value = ser[(em.kind, version)](em.record, ctx[em.kind])
            _produce(prod, topic_of[em.kind], em.key.encode(), value, delivered)
            _count(report, em, topic_of[em.kind], version)
            if progress and time.monotonic() >= next_progress:
                next_progress = time.monotonic() + 2.0
                _progress(report, cfg.total_events, time.monotonic() - t0)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if progress and sys.stderr.isatty():
            sys.stderr.write("\n")
        prod.flush(60)
        report.seconds = time.monotonic() - t0
    return report


def _sleep_until(emit_ms: int) -> None:
    delay = emit_ms / 1000 - time.time()
    if delay > 0:
        time.sleep(delay)


def _produce(
    prod: Producer,
    topic: str,
    key: bytes,
    value: bytes | None,
    cb: Callable[[KafkaError | None, object], None],
) -> None:
    while True:
        try:
            prod.produce(topic, key=key, value=value, on_delivery=cb)
            prod.poll(0)
            return
        except BufferError:
            prod.poll(0.1)  # the local queue is full: let deliveries drain


def _count(r: SendReport, em: Emission, topic: str, version: int) -> None:
    r.per_topic[topic] += 1
    r.per_version[version] += 1
    r.late += em.late
    r.duplicates += em.duplicate
    if em.kind == "game":
        if em.record["game_id"] not in r.games:
            r.leagues[em.record["league"]] += 1
        r.games.add(em.record["game_id"])
        r.corrections += int(em.record["revision"] > 0 and not em.duplicate)
    else:
        r.users.add(em.key)


def _progress(r: SendReport, total: int, elapsed: float) -> None:
    line = (
        f"simulate: {r.sent:,}/{total:,} sent ({r.sent / max(elapsed, 1e-9):,.0f}/s), "
        f"games {len(r.games)}, users {len(r.users)}, late {r.late}, duplicates {r.duplicates}"
    )
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line)
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
