"""`tipoff simulate`: write the simulated live-sports feed to Kafka.

The events come from the pure generator in flink_jobs/sim; this module only decides where the
timeline lies (live: now onwards, emitted at wall-clock pace; as fast as possible: laid in
the past so it ends when the run starts), encodes (simwire.WireEncoder: the bytes
confluent-kafka's AvroSerializer would write, with schema ids looked up once) and sends
(simsend: from this process or from several producer processes that each send whole
partitions; simreport: what was sent). Each record's Kafka timestamp (CreateTime) is its
event_time.
"""

from __future__ import annotations

import time
from dataclasses import replace

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, ResourceType
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from flink_jobs.output import Log
from flink_jobs.settings import Settings
from flink_jobs.sim import SimConfig, versions
from flink_jobs.stack.health import admin
from flink_jobs.tools.schemas import registry
from flink_jobs.tools.simreport import SendReport, SimulateError
from flink_jobs.tools.simsend import Job, send_parallel, send_single
from udfs.serde import avsc
from udfs.serde.registry import subject

FAST_EVENTS_PER_SECOND = 50  # event-time density of an as-fast-as-possible run without --duration


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


def _partitions(s: Settings) -> dict[str, int]:
    """Partition count of each input topic; they must exist."""
    topics = admin(s.endpoints.bootstrap_servers).list_topics(timeout=10).topics
    wanted = (s.topics.game_events, s.topics.user_interactions)
    missing = [t for t in wanted if t not in topics]
    if missing:
        raise SimulateError(
            f"topic(s) {', '.join(missing)} do not exist on {s.endpoints.bootstrap_servers}; "
            "run `tipoff schemas register` first"
        )
    return {t: len(topics[t].partitions) for t in wanted}


def _check_retention(s: Settings, cfg: SimConfig, now_ms: int) -> None:
    """Records carry their event time as Kafka timestamp, and time-based retention deletes
    by it: refuse a timeline the topics' retention.ms would delete as soon as written."""
    client = admin(s.endpoints.bootstrap_servers)
    topics = (s.topics.game_events, s.topics.user_interactions)
    resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
    for res, fut in client.describe_configs(resources, request_timeout=15).items():
        try:
            conf = fut.result()
        except KafkaException:
            continue  # not allowed to describe: nothing to check against
        retention = int(conf["retention.ms"].value) if "retention.ms" in conf else -1
        policy = conf["cleanup.policy"].value if "cleanup.policy" in conf else "delete"
        if retention < 0 or "delete" not in policy:
            continue
        if cfg.start_ms < now_ms - retention:
            days = (now_ms - cfg.start_ms) / 86_400_000
            raise SimulateError(
                f"the timeline starts {days:.1f} days ago, beyond retention.ms={retention} "
                f"({retention / 86_400_000:g} days) of topic {res.name}: records are stamped "
                "with their event time, so the broker would delete them right away. Use a "
                "later timeline, or raise the topic's retention.ms (-1 keeps records forever)"
            )


def encoders(
    client: SchemaRegistryClient, topic_of: dict[str, str], schema_of: dict[str, str], mode: str
) -> dict[tuple[str, int], tuple[str, int]]:
    """(schema text, registered id) per (kind, schema version) `mode` can use; version n is
    the n-th distinct version of the topic's .avsc (avsc.history: releases/ oldest first,
    then the current file), as `tipoff schemas register` registers them. Each must be
    registered under `<topic>-value`: its id is looked up once, here."""
    out = {}
    for kind, topic in topic_of.items():
        rel = schema_of[topic]
        history = avsc.history(rel)
        for n in versions.used_by(mode):
            if n > len(history):
                raise SimulateError(f"{rel} has no version {n} (it has {len(history)})")
            text = avsc.canonical(history[n - 1])
            try:
                found = client.lookup_schema(subject(topic), Schema(text, "AVRO"))
            except SchemaRegistryError as e:
                if e.http_status_code != 404:
                    raise
                raise SimulateError(
                    f"version {n} of {rel} is not registered under {subject(topic)}; "
                    "run `tipoff schemas register` (it registers every version)"
                ) from e
            if found.schema_id is None:
                raise SimulateError(f"the registry gave no id for version {n} of {rel}")
            out[(kind, n)] = (text, found.schema_id)
    return out


def run(
    s: Settings,
    cfg: SimConfig,
    live: bool,
    log: Log,
    progress: bool = True,
    schema_version: str = str(versions.CURRENT_VERSION),
    only: slice | None = None,
    processes: int = 1,
    target_rate: float = 0.0,
) -> SendReport:
    """Send the simulation; `schema_version` is one of versions.MODES: every record at
    version 1 or 2 of its schema, or "mixed", each at the version its producer writes.
    `only` sends just those positions of the emission sequence (duplicates included), e.g.
    the first half of a run now and the rest later. `processes` > 1 sends from that many
    spawned processes, each whole partitions (at most the input topics' partition count).
    `target_rate` (live) is the asked rate, reported beside the achieved one."""
    if schema_version not in versions.MODES:
        raise SimulateError(
            f"--schema-version must be one of {', '.join(versions.MODES)}, got {schema_version}"
        )
    partitions = _partitions(s)
    most = max(partitions.values())
    if not 1 <= processes <= most:
        raise SimulateError(
            f"--processes must be between 1 and {most} (the partitions of "
            f"{s.topics.user_interactions}: each process sends whole partitions), "
            f"got {processes}"
        )
    _check_retention(s, cfg, int(time.time() * 1000))
    topic_of = {"game": s.topics.game_events, "interaction": s.topics.user_interactions}
    specs = encoders(
        registry(s.endpoints.registry_url), topic_of, s.topics.schema_of(), schema_version
    )
    job = Job(s.endpoints.bootstrap_servers, topic_of, specs, cfg, live, schema_version, only, None)
    t0 = time.monotonic()
    if processes == 1:
        report = send_single(job, progress)
    else:
        report = send_parallel(job, processes, partitions, progress)
    report.seconds = time.monotonic() - t0
    report.processes = processes
    if live:
        report.target_rate = target_rate
        report.timeline_s = cfg.duration_ms / 1000
    return report
