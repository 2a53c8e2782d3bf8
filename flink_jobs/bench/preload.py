"""Fresh bench topics with simulated events in them, written before any job runs.

The topics are tipoff's own (same partitions, schemas registered the same way) under a
prefix of their own, so a bench run never touches the topics of the local demo and counts
are exact. Preloaded events lie in the past (as fast as possible: the timeline ends when
the preload starts) at `event_rate` events per second of event time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from flink_jobs.output import Log
from flink_jobs.settings import Settings, Topics
from flink_jobs.sim import SimConfig
from flink_jobs.stack.health import admin
from flink_jobs.tools import schemas, simreport, simulate


def bench_settings(s: Settings, prefix: str) -> Settings:
    """`s` with tipoff's default topic names under `prefix` (inputs, outputs, dead letters)."""
    return replace(s, topics=Topics().prefixed(prefix))


def create(s: Settings, partitions: int, log: Log) -> None:
    """Create the topics of `s` and register every schema version under them."""
    schemas.register(s, partitions, None, log=lambda _line: None)
    log(f"bench topics: {', '.join(s.topics.all())} ({partitions} partitions)")


@dataclass(frozen=True)
class Feed:
    """What was preloaded: records per input topic and who is in them."""

    per_topic: dict[str, int]
    users: int
    games: int
    event_time_s: float  # length of the simulated timeline
    seconds: float  # wall time the preload took

    @property
    def records(self) -> int:
        return sum(self.per_topic.values())


def preload(
    s: Settings,
    events: int,
    *,
    users: int,
    games: int,
    event_rate: float,
    seed: int,
    log: Log,
) -> Feed:
    """Send `events` simulated original events (plus the simulator's duplicates) to the
    input topics of `s` as fast as possible; the topics must exist."""
    cfg = SimConfig(seed=seed, games=games, users=users)
    now = int(time.time() * 1000)
    cfg = simulate.plan(cfg, 0, now, max(60.0, events / event_rate), events)
    log(
        f"preload: {events:,} events ({users:,} users, {games} games) over "
        f"{cfg.duration_ms / 1000:,.0f}s of event time"
    )
    report = simulate.run(s, cfg, live=False, log=log, progress=True)
    if report.failed:
        raise simreport.SimulateError(
            f"preload: {len(report.failed)} deliveries failed, first: {report.failed[0]}"
        )
    per_topic = end_offsets(s.endpoints.bootstrap_servers, list(report.per_topic))
    return Feed(
        per_topic={t: sum(per_topic[t].values()) for t in per_topic},
        users=len(report.users),
        games=len(report.games),
        event_time_s=cfg.duration_ms / 1000,
        seconds=report.seconds,
    )


def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, dict[int, int]]:
    """topic -> partition -> end offset (records, for topics written without transactions)."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "tipoff-bench", "log_level": 3})
    try:
        md = c.list_topics(timeout=15).topics
        return {
            t: {
                p: c.get_watermark_offsets(TopicPartition(t, p), timeout=15)[1]
                for p in md[t].partitions
            }
            for t in topics
        }
    finally:
        c.close()


def delete_topics(s: Settings, prefix: str, log: Log) -> None:
    """Delete every topic whose name starts with `prefix` (a bench run's own)."""
    client: AdminClient = admin(s.endpoints.bootstrap_servers)
    doomed = [t for t in client.list_topics(timeout=10).topics if t.startswith(prefix)]
    if not doomed:
        return
    for topic, fut in client.delete_topics(doomed, operation_timeout=30).items():
        try:
            fut.result()
        except Exception as e:  # a topic that cannot go is no reason to fail the bench
            log(f"note: could not delete {topic}: {e}")
