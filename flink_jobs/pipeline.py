"""Wire a feature job: Kafka (raw bytes + metadata) -> decode -> event-time watermarks ->
key_by entity -> feature state machine -> Kafka (exactly-once), dead letters beside it.

Sources and sinks are Table API Kafka tables with the `raw` format: that is how PyFlink
gets each record's key, partition, offset and timestamp (dead letters need them) and
writes keyed records and tombstones. Everything in between is the DataStream API.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Duration, WatermarkStrategy
from pyflink.datastream import (
    CheckpointingMode,
    DataStream,
    KeyedStream,
    StreamExecutionEnvironment,
)
from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment

from flink_jobs.config import EXACTLY_ONCE, JobConfig, Plan
from udfs.flink import types
from udfs.flink.decode import Decode
from udfs.flink.features import Features
from udfs.jobs import combined_name

FEATURE_TIME_HEADER = "feature_time"  # decimal epoch ms, on every feature record and tombstone


def uid(job: str, operator: str) -> str:
    """Stable operator ids: renaming one breaks restoring savepoints (see docs)."""
    return f"tipoff.{job}.{operator}"


def python_first_on_path() -> None:
    """Thread mode embeds the Python found first on PATH in the JVM, and the gateway JVM
    keeps the PATH it started with: call this before anything in the process starts it,
    so it is this interpreter (with pyflink and tipoff installed), not the system one."""
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _duration(ms: int) -> str:
    return f"{ms // 1000} s" if ms % 1000 == 0 else f"{ms} ms"


def flink_settings(cfg: JobConfig) -> dict[str, str]:
    """The Flink configuration a job's options imply: what environment() sets for every run,
    and what each FlinkDeployment's flinkConfiguration says (k8s/base/deployments.py renders it
    from here, so the two cannot disagree — the job's values would win silently)."""
    s = {
        # Thread mode runs Python in the TaskManager's JVM process: 20-30x the throughput
        # of the default process mode (platform notes).
        "python.execution-mode": "thread",
        "state.backend.type": cfg.state_backend,
        # The checkpoint interval is also the exactly-once commit interval.
        "execution.checkpointing.interval": _duration(cfg.checkpoint_interval_ms),
    }
    if cfg.state_backend == "rocksdb":
        s["execution.checkpointing.incremental"] = "true"
    if cfg.checkpoint_dir:
        s["execution.checkpointing.dir"] = cfg.checkpoint_dir
    # A job that fails for good (restarts exhausted) or is cancelled keeps its last
    # checkpoint: it restores like a savepoint. Flink's default deletes it.
    s["execution.checkpointing.externalized-checkpoint-retention"] = "RETAIN_ON_CANCELLATION"
    # One slow or failed checkpoint (e.g. behind a registry-outage retry) is not a reason
    # to restart the job; three in a row are.
    s["execution.checkpointing.tolerable-failed-checkpoints"] = "3"
    # Retries with backoff (a registry or broker outage of a few minutes is ridden out),
    # then fail: a broken setup must surface, not restart forever.
    if cfg.restart_attempts <= 0:
        s["restart-strategy.type"] = "none"
    else:
        s["restart-strategy.type"] = "exponential-delay"
        s["restart-strategy.exponential-delay.initial-backoff"] = "1 s"
        s["restart-strategy.exponential-delay.max-backoff"] = "60 s"
        s["restart-strategy.exponential-delay.attempts-before-reset-backoff"] = str(
            cfg.restart_attempts
        )
    return s


def environment(cfg: JobConfig) -> tuple[StreamExecutionEnvironment, StreamTableEnvironment]:
    python_first_on_path()
    conf = Configuration()
    for key, value in flink_settings(cfg).items():
        conf.set_string(key, value)
    # This process's Python (with pyflink and tipoff), for the local cluster and the client.
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    if cfg.jars:
        conf.set_string("pipeline.jars", ";".join(Path(j).resolve().as_uri() for j in cfg.jars))
    if cfg.rest_port is not None:
        conf.set_string("rest.address", "127.0.0.1")
        conf.set_string("rest.bind-address", "127.0.0.1")
        conf.set_string("rest.port", str(cfg.rest_port))
    if cfg.from_savepoint:
        conf.set_string("execution.state-recovery.path", cfg.from_savepoint)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg.parallelism)
    env.enable_checkpointing(cfg.checkpoint_interval_ms, CheckpointingMode.EXACTLY_ONCE)
    t_env = StreamTableEnvironment.create(env)
    # Planner-made operators (Kafka sources and sinks) get explicit, deterministic uids.
    t_env.get_config().set("table.exec.uid.generation", "ALWAYS")
    return env, t_env


def _kafka_options(cfg: JobConfig, topic: str) -> list[str]:
    return [
        "'connector' = 'kafka'",
        f"'topic' = '{topic}'",
        f"'properties.bootstrap.servers' = '{cfg.bootstrap_servers}'",
        "'key.format' = 'raw'",
        "'key.fields' = 'k'",
        "'value.format' = 'raw'",
        "'value.fields-include' = 'EXCEPT_KEY'",
    ]


def source(t_env: StreamTableEnvironment, cfg: JobConfig, job: str) -> DataStream:
    """All input topics of `job` as rows (k, v, topic, partition, offset, ts)."""
    selects = []
    for i, topic in enumerate(cfg.input_topics(job)):
        name = f"src_{job.replace('-', '_')}_{i}"
        options = [
            *_kafka_options(cfg, topic),
            f"'properties.group.id' = 'tipoff-{job}'",
            # Only committed transactions are input; aborted ones never become features.
            "'properties.isolation.level' = 'read_committed'",
            "'scan.startup.mode' = 'earliest-offset'",
        ]
        if cfg.bounded:
            options.append("'scan.bounded.mode' = 'latest-offset'")
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE {name} (k BYTES, v BYTES, "
            "`partition` INT METADATA VIRTUAL, `offset` BIGINT METADATA VIRTUAL, "
            "ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL) "
            f"WITH ({', '.join(options)})"
        )
        selects.append(f"SELECT k, v, '{topic}' AS topic, `partition`, `offset`, ts FROM {name}")
    return t_env.to_data_stream(t_env.sql_query(" UNION ALL ".join(selects)))


def sink_table(
    t_env: StreamTableEnvironment, cfg: JobConfig, job: str, role: str, topic: str
) -> str:
    name = f"sink_{job.replace('-', '_')}_{role}"
    options = [
        *_kafka_options(cfg, topic),
        f"'sink.delivery-guarantee' = '{cfg.delivery_guarantee}'",
    ]
    if cfg.delivery_guarantee == EXACTLY_ONCE:
        options += [
            f"'sink.transactional-id-prefix' = 'tipoff-{job}-{role}'",
            # Within the broker's cap (tipoff's stack raises it to 1 h; Kafka's default is
            # 15 min).
            f"'properties.transaction.timeout.ms' = '{cfg.transaction_timeout_ms}'",
        ]
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE {name} (k BYTES, v BYTES, headers MAP<STRING, BYTES> METADATA) "
        f"WITH ({', '.join(options)})"
    )
    return name


def with_watermarks(decoded: DataStream, cfg: JobConfig, job: str) -> DataStream:
    """Bounded-out-of-orderness watermarks from the decode step's per-partition basis,
    generated in the JVM (no second Python call per record): PyFlink's own
    CustomTimestampAssigner takes field 1 of the tuple as the timestamp and
    RemoveTimestampMapFunction drops it again."""
    jvm = get_gateway().jvm
    eventtime = jvm.org.apache.flink.streaming.api.functions.python.eventtime
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(cfg.out_of_orderness_ms)
    ).with_idleness(Duration.of_millis(cfg.idleness_ms))
    j_stream = (
        decoded._j_data_stream.assignTimestampsAndWatermarks(
            strategy._j_watermark_strategy.withTimestampAssigner(
                eventtime.CustomTimestampAssigner()
            )
        )
        .uid(uid(job, "watermarks"))
        .name(f"{job}: event-time watermarks")
        .map(eventtime.RemoveTimestampMapFunction(), types.KEY_AND_EVENT.get_java_type_info())
        .uid(uid(job, "unwrap"))
        .name(f"{job}: unwrap")
    )
    return DataStream(j_stream)


def by_key(stream: DataStream) -> KeyedStream:
    """Key (key, keyed event) rows by field 0 in the JVM. The same key selector, key type and
    operator input as PyFlink's `key_by(lambda row: row[0], Types.STRING())`, which puts a
    Python operator in front (one more crossing, unpickling and re-pickling every Event)
    that the decode step makes unnecessary. Key groups, and so savepoints, are unchanged."""
    j_keyed = stream._j_data_stream.keyBy(
        get_gateway().jvm.KeyByKeySelector(), types.KEY.get_java_type_info()
    )
    return KeyedStream(j_keyed, types.KEYED_EVENT, stream)


def build_pipeline(
    t_env: StreamTableEnvironment, plan: Plan, job: str
) -> list[tuple[str, DataStream]]:
    """One feature job's dataflow; returns (sink table, stream) pairs to insert."""
    cfg, layout, schemas = plan.config, plan.layout, plan.schemas[job]
    decode = Decode(job, schemas, layout.partitions, layout.end_offsets, cfg.idleness_ms)
    decoded = (
        source(t_env, cfg, job)
        .process(decode, output_type=types.KEYED_EVENT_WITH_BASIS)
        .uid(uid(job, "decode"))
        .name(f"{job}: decode and validate")
    )
    features = (
        by_key(with_watermarks(decoded, cfg, job))
        .process(
            Features(job, schemas, cfg.tick_ms, cfg.state_cache_keys), output_type=types.KAFKA_ROW
        )
        .uid(uid(job, "features"))
        .name(f"{job}: features")
    )
    dead = decoded.get_side_output(types.DEAD_LETTERS).union(
        features.get_side_output(types.DEAD_LETTERS)
    )
    return [
        (sink_table(t_env, cfg, job, "features", cfg.output_topic(job)), features),
        (sink_table(t_env, cfg, job, "dead_letters", cfg.topics.dead_letters), dead),
    ]


def insert_into(
    t_env: StreamTableEnvironment, statements: Any, table: str, stream: DataStream
) -> None:
    """Add `stream`'s (k, v, ts) rows to `statements` as an insert into sink `table`.

    The feature time rides in a header: a tombstone has no value to carry it, and the record
    timestamp cannot (brokers refuse timestamps an hour or more ahead, and end-of-input
    ticks run up to 30 days past the last event)."""
    view = f"{table}_rows"
    t_env.create_temporary_view(view, t_env.from_data_stream(stream))
    statements.add_insert(
        table,
        t_env.sql_query(
            f"SELECT k, v, CASE WHEN ts IS NULL THEN CAST(NULL AS MAP<STRING, BYTES>) "
            f"ELSE MAP['{FEATURE_TIME_HEADER}', CAST(CAST(ts AS STRING) AS BYTES)] END "
            f"FROM {view}"
        ),
    )


def build(t_env: StreamTableEnvironment, plan: Plan) -> None:
    """Wire every job of `plan` into the environment `t_env` was made from (environment()),
    sources to sinks; never executes, and does no I/O: what the build needs is in the plan
    (config.resolve). The savepoint planner builds this way offline and reads the graph."""
    statements = t_env.create_statement_set()
    for job in plan.config.jobs:
        for table, stream in build_pipeline(t_env, plan, job):
            insert_into(t_env, statements, table, stream)
    statements.attach_as_datastream()


def execute(plan: Plan, name: str | None = None) -> object:
    """Build `plan` and run it (a MiniCluster, or the cluster `flink run` submits to)."""
    env, t_env = environment(plan.config)
    build(t_env, plan)
    return env.execute(name or combined_name(plan.config.jobs))
