"""JobConfig: everything a feature pipeline needs, parsed once, passed down frozen.

The same options parse from `tipoff run/submit` and from a job module's own argv (what
`flink run -py` and the Kubernetes operator's Python driver pass), so a job behaves the
same wherever it starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flink_jobs.settings import Settings, Topics
from udfs import jobs as table
from udfs.serde.jobcodecs import JobSchemas

JOBS = table.JOB_NAMES
EXACTLY_ONCE = "exactly-once"
AT_LEAST_ONCE = "at-least-once"
DELIVERY_GUARANTEES = (EXACTLY_ONCE, AT_LEAST_ONCE)


@dataclass(frozen=True)
class JobConfig:
    jobs: tuple[str, ...]
    bootstrap_servers: str
    registry_url: str
    topics: Topics = field(default_factory=Topics)
    jars: tuple[str, ...] = ()
    bounded: bool = False
    parallelism: int = 1
    checkpoint_interval_ms: int = 10_000
    # Of the Kafka sinks: exactly-once (transactions committed on checkpoints; the output
    # latency floor is the checkpoint interval) or at-least-once (flushed on checkpoints,
    # visible at once; a restart can write some records again).
    delivery_guarantee: str = EXACTLY_ONCE
    state_backend: str = "hashmap"
    checkpoint_dir: str | None = None
    from_savepoint: str | None = None
    tick_ms: int = 1_000
    out_of_orderness_ms: int = 2_000
    idleness_ms: int = 30_000
    transaction_timeout_ms: int = 900_000
    # Input partitions per topic, and (bounded runs) their end offsets "topic:partition" ->
    # offset at start: the decode step's per-partition event-time clock needs both.
    partitions: dict[str, int] = field(default_factory=dict)
    end_offsets: dict[str, int] | None = None
    # The reader schemas this build decodes with and writes (an avro_schemas/ tree;
    # default: the one shipped in the package) and where tasks cache writer schemas.
    schemas_dir: str | None = None
    schema_cache_dir: str | None = None
    restart_attempts: int = 10
    rest_port: int | None = None
    # Keys per subtask whose state the feature functions keep unpickled between calls
    # (a read cache; Flink state stays the only copy that counts). 0: none.
    state_cache_keys: int = 10_000

    def schemas_for(self, job: str) -> JobSchemas:
        """The job's reader schemas and a snapshot of its subjects, taken now (client side)."""
        return JobSchemas.resolve(
            self.registry_url, self.topics_for(job), self.schemas_dir, self.schema_cache_dir
        )

    def topics_for(self, job: str) -> dict[str, str]:
        """Role -> topic for JobCodecs (roles: .avsc paths of inputs/outputs, dead_letters)."""
        schema_of = self.topics.schema_of()
        roles = {schema_of[t]: t for t in [*self.input_topics(job), self.output_topic(job)]}
        roles["dead_letters"] = self.topics.dead_letters
        return roles

    def input_topics(self, job: str) -> list[str]:
        return [self.topics.name(role) for role in table.JOB[job].inputs]

    def output_topic(self, job: str) -> str:
        return self.topics.name(table.JOB[job].output)

    def to_argv(self) -> list[str]:
        """Arguments that make a job module rebuild exactly this config."""
        argv = [
            "--bootstrap-servers",
            self.bootstrap_servers,
            "--registry-url",
            self.registry_url,
            "--parallelism",
            str(self.parallelism),
            "--checkpoint-interval",
            str(self.checkpoint_interval_ms),
            "--delivery-guarantee",
            self.delivery_guarantee,
            "--state-backend",
            self.state_backend,
            "--tick-ms",
            str(self.tick_ms),
            "--out-of-orderness-ms",
            str(self.out_of_orderness_ms),
            "--idleness-ms",
            str(self.idleness_ms),
        ]
        for name, topic in asdict(self.topics).items():
            argv += [f"--topic-{name.replace('_', '-')}", topic]
        if self.bounded:
            argv.append("--bounded")
        if self.checkpoint_dir:
            argv += ["--checkpoint-dir", self.checkpoint_dir]
        if self.schemas_dir:
            argv += ["--schemas-dir", self.schemas_dir]
        if self.schema_cache_dir:
            argv += ["--schema-cache-dir", self.schema_cache_dir]
        argv += ["--restart-attempts", str(self.restart_attempts)]
        argv += ["--state-cache-keys", str(self.state_cache_keys)]
        for jar in self.jars:
            argv += ["--jar", jar]
        return argv


def add_job_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("job")
    g.add_argument("--bootstrap-servers", help="Kafka (default: the configured stack)")
    g.add_argument("--registry-url", help="schema registry (default: the configured stack)")
    g.add_argument(
        "--bounded",
        action="store_true",
        help="read to the end offsets present at start, fire all pending ticks, stop",
    )
    g.add_argument("--parallelism", type=int, default=1)
    g.add_argument(
        "--checkpoint-interval",
        type=int,
        default=10_000,
        metavar="MS",
        help="checkpoint (and exactly-once commit) interval in ms (10000)",
    )
    g.add_argument(
        "--delivery-guarantee",
        choices=DELIVERY_GUARANTEES,
        default=EXACTLY_ONCE,
        help="of the Kafka sinks: exactly-once (default; read_committed consumers see records "
        "when the checkpoint commits) or at-least-once (records visible at once; duplicates "
        "possible after a restart)",
    )
    g.add_argument("--state-backend", choices=["hashmap", "rocksdb"], default="hashmap")
    g.add_argument("--checkpoint-dir", help="checkpoint storage URI (default: under the state dir)")
    g.add_argument("--from-savepoint", help="restore from this savepoint or checkpoint path")
    g.add_argument("--tick-ms", type=int, default=1_000, help="feature tick length (1000)")
    g.add_argument("--out-of-orderness-ms", type=int, default=2_000, help="watermark bound (2000)")
    g.add_argument("--idleness-ms", type=int, default=30_000, help="source idleness (30000)")
    g.add_argument("--jar", action="append", default=[], help="extra jar (repeatable)")
    g.add_argument(
        "--schemas-dir",
        help="build the job with the .avsc files of this avro_schemas/ tree (default: the "
        "package's); e.g. avro_schemas/releases/1 runs the release-1 contracts",
    )
    g.add_argument(
        "--schema-cache-dir",
        help="where tasks cache writer schemas by id on local disk (default: under the "
        "state dir); with the snapshot in the job graph, restarts need no registry",
    )
    g.add_argument(
        "--restart-attempts",
        type=int,
        default=10,
        metavar="N",
        help="restarts (exponential backoff 1s..60s) before the job fails (10); 0 fails on "
        "the first error",
    )
    g.add_argument(
        "--state-cache-keys",
        type=int,
        default=10_000,
        metavar="N",
        help="keys per subtask whose state stays unpickled in Python between calls, a read "
        "cache in front of Flink state (10,000; about 10-20 KB each; 0: none)",
    )
    g.add_argument(
        "--rest-port",
        type=int,
        help="(tipoff run) serve the local cluster's REST API on 127.0.0.1:PORT, e.g. for "
        "stop-with-savepoint; default: none",
    )
    for name in Topics.__dataclass_fields__:
        g.add_argument(f"--topic-{name.replace('_', '-')}", help=argparse.SUPPRESS)


def from_args(a: argparse.Namespace, jobs: Sequence[str], settings: Settings) -> JobConfig:
    topics = Topics(
        **{
            name: getattr(a, f"topic_{name}", None) or getattr(settings.topics, name)
            for name in Topics.__dataclass_fields__
        }
    )
    inputs = [topics.user_interactions, topics.game_events]
    bootstrap = a.bootstrap_servers or settings.endpoints.bootstrap_servers
    partitions, ends = input_layout(bootstrap, inputs, a.bounded)
    jars = tuple(a.jar) or tuple(
        sorted(str(p) for p in Path(settings.stack.flink_jars_dir).glob("*.jar"))
    )
    return JobConfig(
        jobs=tuple(jobs),
        bootstrap_servers=bootstrap,
        registry_url=a.registry_url or settings.endpoints.registry_url,
        topics=topics,
        jars=jars,
        bounded=a.bounded,
        parallelism=a.parallelism,
        checkpoint_interval_ms=a.checkpoint_interval,
        delivery_guarantee=a.delivery_guarantee,
        state_backend=a.state_backend,
        # Checkpoints outgrow the JobManager's 5 MB in-memory limit quickly: keep them on disk.
        checkpoint_dir=a.checkpoint_dir
        or (settings.stack.state_dir / "flink" / "checkpoints").resolve().as_uri(),
        from_savepoint=a.from_savepoint,
        tick_ms=a.tick_ms,
        out_of_orderness_ms=a.out_of_orderness_ms,
        idleness_ms=a.idleness_ms,
        partitions=partitions,
        end_offsets=ends,
        schemas_dir=str(Path(a.schemas_dir).resolve()) if a.schemas_dir else None,
        # Beside the registry's own data: wiping the local stack wipes both, so ids never go stale.
        schema_cache_dir=a.schema_cache_dir or str(settings.stack.state_dir / "schema-cache"),
        restart_attempts=a.restart_attempts,
        rest_port=a.rest_port,
        state_cache_keys=a.state_cache_keys,
    )


def input_layout(
    bootstrap: str, topics: Sequence[str], bounded: bool
) -> tuple[dict[str, int], dict[str, int] | None]:
    """Partition counts of the input topics and, for bounded runs, their end offsets now."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "tipoff-layout", "log_level": 3})
    try:
        md = c.list_topics(timeout=15).topics
        missing = [t for t in topics if t not in md]
        if missing:
            raise JobSetupError(
                f"input topic(s) {', '.join(missing)} do not exist on {bootstrap}; "
                "run `tipoff schemas register` (and `tipoff simulate` for data)"
            )
        partitions = {t: len(md[t].partitions) for t in topics}
        if not bounded:
            return partitions, None
        ends = {
            f"{t}:{p}": c.get_watermark_offsets(TopicPartition(t, p), timeout=15)[1]
            for t, n in partitions.items()
            for p in range(n)
        }
        return partitions, ends
    finally:
        c.close()


class JobSetupError(RuntimeError):
    pass
