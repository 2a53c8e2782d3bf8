"""What a feature pipeline needs, in two steps: options, then a plan.

`from_args` parses arguments and the environment into a JobConfig: plain data, no I/O. The
same options parse from `tipoff run/submit` and from a job module's own argv (what `flink
run -py` and the Kubernetes operator's Python driver pass), so a job behaves the same
wherever it starts. `resolve` then does all the I/O the build needs, once — the input
topics' partitions (and end offsets of a bounded run) from Kafka, a snapshot of each job's
schemas from the registry — and returns a Plan, from which flink_jobs.pipeline.build wires
the dataflow without any further I/O.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
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
    # The reader schemas this build decodes with and writes (an avro_schemas/ tree;
    # default: the one shipped in the package) and where tasks cache writer schemas.
    schemas_dir: str | None = None
    schema_cache_dir: str | None = None
    restart_attempts: int = 10
    rest_port: int | None = None
    # Keys per subtask whose state the feature functions keep unpickled between calls
    # (a read cache; Flink state stays the only copy that counts). 0: none.
    state_cache_keys: int = 10_000

    def topics_for(self, job: str) -> dict[str, str]:
        """Role -> topic for JobCodecs (roles: .avsc paths of inputs/outputs, dead_letters)."""
        schema_of = self.topics.schema_of()
        roles = {schema_of[t]: t for t in [*self.input_topics(job), self.output_topic(job)]}
        roles["dead_letters"] = self.topics.dead_letters
        return roles

    def input_topics(self, job: str) -> list[str]:
        return [self.topics.name(role) for role in table.JOB[job].inputs]

    def all_input_topics(self) -> list[str]:
        """The input topics of every job of this config, each once."""
        return list(dict.fromkeys(t for job in self.jobs for t in self.input_topics(job)))

    def output_topic(self, job: str) -> str:
        return self.topics.name(table.JOB[job].output)

    def to_argv(self) -> list[str]:
        """Arguments that make a job module rebuild exactly this config (from OPTIONS, the
        table the parser is built from)."""
        argv: list[str] = []
        for opt in OPTIONS:
            if opt.argv:
                argv += opt.to_argv(getattr(self, opt.field))
        for name, topic in asdict(self.topics).items():
            argv += [f"--topic-{name.replace('_', '-')}", topic]
        return argv


_DEFAULTS = {f.name: f.default for f in fields(JobConfig)}


@dataclass(frozen=True)
class Option:
    """One job option: its flag, the JobConfig field it sets and how. The parser
    (add_job_options), from_args and to_argv all read this table, so they cannot drift."""

    flag: str
    field: str
    help: str | None = None
    kind: str = "value"  # "value", "flag" (store_true) or "repeat" (append; a tuple field)
    type: type = str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    # None: filled in by from_args from the settings when not given (argparse default None).
    resolved: bool = False
    argv: bool = True  # to_argv passes it on to the job module

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def add_to(self, g: argparse._ArgumentGroup) -> None:
        if self.kind == "flag":
            g.add_argument(self.flag, action="store_true", help=self.help)
        elif self.kind == "repeat":
            g.add_argument(self.flag, action="append", default=[], help=self.help)
        else:
            default = None if self.resolved else _DEFAULTS[self.field]
            g.add_argument(
                self.flag,
                type=self.type,
                default=default,
                choices=self.choices,
                metavar=self.metavar,
                help=self.help,
            )

    def to_argv(self, value: object) -> list[str]:
        if self.kind == "flag":
            return [self.flag] if value else []
        if self.kind == "repeat":
            return [x for v in value for x in (self.flag, str(v))]  # type: ignore[attr-defined]
        return [] if value is None else [self.flag, str(value)]


OPTIONS: tuple[Option, ...] = (
    Option(
        "--bootstrap-servers",
        "bootstrap_servers",
        "Kafka (default: the configured stack)",
        resolved=True,
    ),
    Option(
        "--registry-url",
        "registry_url",
        "schema registry (default: the configured stack)",
        resolved=True,
    ),
    Option(
        "--bounded",
        "bounded",
        "read to the end offsets present at start, fire all pending ticks, stop",
        kind="flag",
    ),
    Option("--parallelism", "parallelism", type=int),
    Option(
        "--checkpoint-interval",
        "checkpoint_interval_ms",
        "checkpoint (and exactly-once commit) interval in ms (10000)",
        type=int,
        metavar="MS",
    ),
    Option(
        "--delivery-guarantee",
        "delivery_guarantee",
        "of the Kafka sinks: exactly-once (default; read_committed consumers see records when "
        "the checkpoint commits) or at-least-once (records visible at once; duplicates "
        "possible after a restart)",
        choices=DELIVERY_GUARANTEES,
    ),
    Option("--state-backend", "state_backend", choices=("hashmap", "rocksdb")),
    Option(
        "--checkpoint-dir",
        "checkpoint_dir",
        "checkpoint storage URI (default: under the state dir)",
        resolved=True,
    ),
    Option(
        "--from-savepoint",
        "from_savepoint",
        "restore from this savepoint or checkpoint path",
        argv=False,  # `flink run --fromSavepoint` (submit.py)
    ),
    Option("--tick-ms", "tick_ms", "feature tick length (1000)", type=int),
    Option("--out-of-orderness-ms", "out_of_orderness_ms", "watermark bound (2000)", type=int),
    Option("--idleness-ms", "idleness_ms", "source idleness (30000)", type=int),
    Option("--jar", "jars", "extra jar (repeatable)", kind="repeat"),
    Option(
        "--schemas-dir",
        "schemas_dir",
        "build the job with the .avsc files of this avro_schemas/ tree (default: the "
        "package's); e.g. avro_schemas/releases/1 runs the release-1 contracts",
        resolved=True,
    ),
    Option(
        "--schema-cache-dir",
        "schema_cache_dir",
        "where tasks cache writer schemas by id on local disk (default: under the state "
        "dir); with the snapshot in the job graph, restarts need no registry",
        resolved=True,
    ),
    Option(
        "--restart-attempts",
        "restart_attempts",
        "restarts (exponential backoff 1s..60s) before the job fails (10); 0 fails on the "
        "first error",
        type=int,
        metavar="N",
    ),
    Option(
        "--state-cache-keys",
        "state_cache_keys",
        "keys per subtask whose state stays unpickled in Python between calls, a read cache "
        "in front of Flink state (10,000; about 10-20 KB each; 0: none)",
        type=int,
        metavar="N",
    ),
    Option(
        "--rest-port",
        "rest_port",
        "(tipoff run) serve the local cluster's REST API on 127.0.0.1:PORT, e.g. for "
        "stop-with-savepoint; default: none",
        type=int,
        argv=False,  # the local MiniCluster's only
    ),
)


def add_job_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("job")
    for opt in OPTIONS:
        opt.add_to(g)
    for name in Topics.__dataclass_fields__:
        g.add_argument(f"--topic-{name.replace('_', '-')}", help=argparse.SUPPRESS)


def from_args(a: argparse.Namespace, jobs: Sequence[str], settings: Settings) -> JobConfig:
    """The options of a run of `jobs`: arguments over settings. No I/O."""
    topics = Topics(
        **{
            name: getattr(a, f"topic_{name}", None) or getattr(settings.topics, name)
            for name in Topics.__dataclass_fields__
        }
    )
    given = {o.field: getattr(a, o.dest) for o in OPTIONS}
    given["jars"] = tuple(a.jar) or tuple(
        sorted(str(p) for p in Path(settings.stack.flink_jars_dir).glob("*.jar"))
    )
    # The options the table marks `resolved`: from the settings when not given.
    stack = settings.stack.state_dir
    given["bootstrap_servers"] = a.bootstrap_servers or settings.endpoints.bootstrap_servers
    given["registry_url"] = a.registry_url or settings.endpoints.registry_url
    # Checkpoints outgrow the JobManager's 5 MB in-memory limit quickly: keep them on disk.
    given["checkpoint_dir"] = (
        a.checkpoint_dir or (stack / "flink" / "checkpoints").resolve().as_uri()
    )
    given["schemas_dir"] = str(Path(a.schemas_dir).resolve()) if a.schemas_dir else None
    # Beside the registry's own data: wiping the local stack wipes both, so ids never go stale.
    given["schema_cache_dir"] = a.schema_cache_dir or str(stack / "schema-cache")
    return JobConfig(jobs=tuple(jobs), topics=topics, **given)


@dataclass(frozen=True)
class Layout:
    """The input topics' partition counts and, for a bounded run, their end offsets at
    start ("topic:partition" -> offset): the decode step's per-partition event-time clock
    needs both."""

    partitions: dict[str, int] = field(default_factory=dict)
    end_offsets: dict[str, int] | None = None


@dataclass(frozen=True)
class Plan:
    """Everything a run's build needs, resolved once (resolve()): its options, the inputs'
    layout and each job's schemas (the build's reader schemas and a snapshot of the
    registry's writer schemas, which travel in the job graph)."""

    config: JobConfig
    layout: Layout
    schemas: Mapping[str, JobSchemas]


def resolve(cfg: JobConfig) -> Plan:
    """All the I/O a build needs: Kafka (the input topics must exist; their partitions and,
    bounded, end offsets) and then the registry (each job's subjects, snapshotted now)."""
    partitions, ends = input_layout(cfg.bootstrap_servers, cfg.all_input_topics(), cfg.bounded)
    schemas = {
        job: JobSchemas.resolve(
            cfg.registry_url, cfg.topics_for(job), cfg.schemas_dir, cfg.schema_cache_dir
        )
        for job in cfg.jobs
    }
    return Plan(cfg, Layout(partitions, ends), schemas)


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
