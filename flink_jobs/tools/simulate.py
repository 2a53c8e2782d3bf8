"""`tipoff simulate`: write the simulated live-sports feed to Kafka.

The events come from the pure generator in udfs/sim; this module only decides where the
timeline lies (live: now onwards, emitted at wall-clock pace; as fast as possible: laid in
the past so it ends when the run starts), encodes (simwire.WireEncoder: the bytes
confluent-kafka's AvroSerializer would write, with schema ids looked up once) and sends,
from this process or from several producer processes that each send whole partitions.
Each record's Kafka timestamp (CreateTime) is its event_time.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import ConfigResource, ResourceType
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from flink_jobs.settings import Settings
from flink_jobs.stack.health import admin
from flink_jobs.tools.schemas import registry, subject
from flink_jobs.tools.simwire import WireEncoder, partition_of
from udfs.serde import avsc
from udfs.sim import Emission, SimConfig, Simulation, versions

Log = Callable[[str], None]
FAST_EVENTS_PER_SECOND = 50  # event-time density of an as-fast-as-possible run without --duration
# Live mode warns when the achieved send rate is below the scheduled one by more than this.
BEHIND_TOLERANCE = 0.03
PROGRESS_EVERY_S = 2.0
_POLL_EVERY = 256  # records between producer polls (delivery callbacks)
_TICK_EVERY = 1024  # records between progress / stop checks


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
    processes: int = 1
    # Live mode only: the asked rate (original events/s), the timeline's length, the
    # records scheduled inside it that were sent, when the last of them went out (seconds
    # after the timeline's start) and the largest delay of a send behind its schedule.
    target_rate: float = 0.0
    timeline_s: float = 0.0
    window_sent: int = 0
    window_wall_s: float = 0.0
    max_lag_ms: int = 0

    @property
    def sent(self) -> int:
        return sum(self.per_topic.values())

    @property
    def scheduled_rate(self) -> float:
        """Records/s the schedule asked for the records sent inside the timeline."""
        return self.window_sent / self.timeline_s if self.timeline_s > 0 else 0.0

    @property
    def achieved_rate(self) -> float:
        """Records/s actually sent: the timeline's records over the wall time they took
        (from the timeline's start to the last one's send), catch-up included."""
        wall = max(self.window_wall_s, self.timeline_s)
        return self.window_sent / wall if wall > 0 else 0.0

    @property
    def behind(self) -> bool:
        """Live: the sender fell behind the schedule by more than BEHIND_TOLERANCE."""
        return self.target_rate > 0 and self.achieved_rate < self.scheduled_rate * (
            1 - BEHIND_TOLERANCE
        )

    def merge(self, other: SendReport) -> None:
        """Add another process's report of a disjoint share (games and users are disjoint:
        each is keyed, and a key's partition belongs to one process)."""
        self.per_topic.update(other.per_topic)
        self.per_version.update(other.per_version)
        self.late += other.late
        self.duplicates += other.duplicates
        self.corrections += other.corrections
        self.games |= other.games
        self.users |= other.users
        self.leagues.update(other.leagues)
        self.failed += other.failed
        self.interrupted |= other.interrupted
        self.window_sent += other.window_sent
        self.window_wall_s = max(self.window_wall_s, other.window_wall_s)
        self.max_lag_ms = max(self.max_lag_ms, other.max_lag_ms)

    def lines(self) -> list[str]:
        rate = self.sent / self.seconds if self.seconds > 0 else 0.0
        procs = f" by {self.processes} processes" if self.processes > 1 else ""
        out = [
            f"{'interrupted: ' if self.interrupted else ''}sent {self.sent} records "
            f"in {self.seconds:.1f}s ({rate:,.0f}/s){procs}"
        ]
        if self.target_rate > 0:
            ratio = self.achieved_rate / self.scheduled_rate if self.scheduled_rate else 0.0
            out.append(
                f"  live: achieved {self.achieved_rate:.1f}/s of {self.scheduled_rate:.1f}/s "
                f"scheduled ({ratio:.1%}; --rate {self.target_rate:g} events/s): "
                f"{self.window_sent} records of the {self.timeline_s:g}s timeline, the last "
                f"sent {self.window_wall_s:.1f}s after its start; max send lag "
                f"{self.max_lag_ms / 1000:.2f}s"
            )
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

    def warning(self) -> str | None:
        """Live mode: a clear warning when the sender could not keep the asked rate."""
        if not self.behind:
            return None
        return (
            f"WARNING: the simulator fell behind: it sent {self.achieved_rate:,.0f} records/s "
            f"against {self.scheduled_rate:,.0f}/s scheduled "
            f"({1 - self.achieved_rate / self.scheduled_rate:.0%} short; max send lag "
            f"{self.max_lag_ms / 1000:.1f}s), so event times ran ahead of the sends. Use more "
            f"--processes (this run: {self.processes}) or a lower --rate."
        )


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


@dataclass(frozen=True)
class Shard:
    """Which emissions one of `count` producer processes sends: those whose key's partition
    p (Kafka's default partitioner) has p % count == index. A partition is written by one
    process in generation order, so every partition holds the same records in the same
    order as a single-process run."""

    index: int
    count: int
    partitions: dict[str, int]  # topic -> partition count


@dataclass(frozen=True)
class Job:
    """Everything a sending process needs (picklable: it crosses to spawned processes)."""

    bootstrap: str
    topic_of: dict[str, str]  # kind -> topic
    schemas: dict[tuple[str, int], tuple[str, int]]  # (kind, version) -> (schema text, id)
    cfg: SimConfig
    live: bool
    schema_version: str
    only: slice | None
    shard: Shard | None


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
        report = _single(job, progress)
    else:
        report = _parallel(job, processes, partitions, progress)
    report.seconds = time.monotonic() - t0
    report.processes = processes
    if live:
        report.target_rate = target_rate
        report.timeline_s = cfg.duration_ms / 1000
    return report


def _single(job: Job, progress: bool) -> SendReport:
    total, t0 = job.cfg.total_events, time.monotonic()
    next_at = t0 + PROGRESS_EVERY_S

    def tick(r: SendReport) -> bool:
        nonlocal next_at
        if progress and time.monotonic() >= next_at:
            next_at = time.monotonic() + PROGRESS_EVERY_S
            _progress(r.sent, r, total, time.monotonic() - t0)
        return False

    try:
        return send(job, tick)
    finally:
        if progress and sys.stderr.isatty():
            sys.stderr.write("\n")


def send(job: Job, tick: Callable[[SendReport], bool]) -> SendReport:
    """Send `job`'s emissions (its shard's only, if it has one) from this process. `tick` is
    called every _TICK_EVERY records and stops the run when it returns True."""
    try:
        sim = Simulation(job.cfg)
    except ValueError as e:
        raise SimulateError(f"cannot simulate that: {e}") from e
    enc = {kv: WireEncoder(json.loads(text), sid) for kv, (text, sid) in job.schemas.items()}
    topic_of, live, mode = job.topic_of, job.live, job.schema_version
    window_end = job.cfg.start_ms + job.cfg.duration_ms
    owned: dict[tuple[str, str], bool] = {}
    shard = job.shard
    prod = producer(job.bootstrap)
    report = SendReport()

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            report.failed.append(str(err))

    n = 0
    try:
        part = (
            sim if job.only is None else islice(sim, job.only.start, job.only.stop, job.only.step)
        )
        for em in part:
            topic = topic_of[em.kind]
            if shard is not None:
                mine = owned.get((topic, em.key))
                if mine is None:
                    p = partition_of(em.key.encode(), shard.partitions[topic])
                    mine = owned[(topic, em.key)] = p % shard.count == shard.index
                if not mine:
                    continue
            if live:
                _sleep_until(em.emit_ms)
            version = versions.choose(mode, em.writer_version)
            value = enc[(em.kind, version)](em.record)
            _produce(prod, topic, em.key.encode(), value, em.record["event_time"], delivered)
            n += 1
            if n % _POLL_EVERY == 0:
                prod.poll(0)
            if live:
                now = int(time.time() * 1000)
                report.max_lag_ms = max(report.max_lag_ms, now - em.emit_ms)
                if em.emit_ms <= window_end:
                    report.window_sent += 1
                    report.window_wall_s = (now - job.cfg.start_ms) / 1000
            _count(report, em, topic, version)
            if n % _TICK_EVERY == 0 and tick(report):
                report.interrupted = True
                break
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        prod.flush(60)
    return report


def _child(job: Job, sent: Any, stop: Any, results: Any) -> None:
    """A producer process: sends its shard, puts ("ok", report) or ("error", text)."""
    parent = os.getppid()

    def tick(r: SendReport) -> bool:
        sent.value = r.sent
        # Stop when asked, or when the parent is gone (killed: nobody would read the result).
        return bool(stop.is_set() or os.getppid() != parent)

    try:
        results.put(("ok", send(job, tick)))
    except KeyboardInterrupt:
        results.put(("error", "interrupted before sending"))
    except SimulateError as e:
        results.put(("error", str(e)))
    except BaseException as e:
        results.put(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def _parallel(job: Job, count: int, partitions: dict[str, int], progress: bool) -> SendReport:
    # spawn, not fork: a forked child would inherit this process's Kafka and HTTP clients.
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    results: Any = ctx.Queue()
    counters = [ctx.Value("q", 0, lock=False) for _ in range(count)]
    procs = [
        ctx.Process(
            target=_child,
            args=(replace(job, shard=Shard(i, count, partitions)), counters[i], stop, results),
            name=f"tipoff-simulate-{i}",
            daemon=True,
        )
        for i in range(count)
    ]
    for p in procs:
        p.start()
    report, errors, got = SendReport(), [], 0
    t0, next_at = time.monotonic(), time.monotonic() + PROGRESS_EVERY_S
    try:
        while got < count:
            try:
                kind, value = results.get(timeout=0.5)
            except queue.Empty:
                if progress and time.monotonic() >= next_at:
                    next_at = time.monotonic() + PROGRESS_EVERY_S
                    done = sum(c.value for c in counters)
                    _progress(done, None, job.cfg.total_events, time.monotonic() - t0)
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead and results.empty():
                    errors.append(f"{dead[0].name} exited with code {dead[0].exitcode}")
                    break
                continue
            except KeyboardInterrupt:
                # Ctrl-C reaches the children too; they flush and report what they sent.
                stop.set()
                report.interrupted = True
                continue
            got += 1
            if kind == "ok":
                report.merge(value)
            else:
                errors.append(value)
                stop.set()
    finally:
        stop.set()
        for p in procs:
            p.join(90)
            if p.is_alive():
                p.terminate()
        if progress and sys.stderr.isatty():
            sys.stderr.write("\n")
    if errors:
        raise SimulateError(f"producer process: {errors[0]}")
    return report


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


def _sleep_until(emit_ms: int) -> None:
    delay = emit_ms / 1000 - time.time()
    if delay > 0.001:  # shorter waits cost more in sleep overhead than they keep in pace
        time.sleep(delay)


def _produce(
    prod: Producer,
    topic: str,
    key: bytes,
    value: bytes | None,
    timestamp_ms: int,
    cb: Callable[[KafkaError | None, object], None],
) -> None:
    while True:
        try:
            # CreateTime = the event time: Kafka's convention for when the record happened.
            prod.produce(topic, key=key, value=value, on_delivery=cb, timestamp=timestamp_ms)
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


def _progress(sent: int, r: SendReport | None, total: int, elapsed: float) -> None:
    line = f"simulate: {sent:,}/{total:,} sent ({sent / max(elapsed, 1e-9):,.0f}/s)"
    if r is not None:
        line += (
            f", games {len(r.games)}, users {len(r.users)}, late {r.late}, "
            f"duplicates {r.duplicates}"
        )
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line)
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
