"""The JVM-only Flink SQL jobs tipoff is measured against, submitted to the same cluster.

All read the preloaded interactions topic from the earliest offset up to the end offsets
present at start (`scan.bounded.mode = latest-offset`) with the `avro-confluent` format,
and write Avro (`avro-confluent`, the schema derived from the sink table and registered
under `<topic>-value`) to Kafka exactly-once, like tipoff:

- copy:   the I/O ceiling: every record copied as it is;
- tumble: product.md's reference: per-user 1-second tumbling-window counts (window TVF,
          GROUP BY user_id and window);
- over:   for context, per-user rolling counts over 1m / 5m / 1h / 24h: four OVER-window
          statements (one window per SELECT) in one statement set, sharing one source.

A job is a tiny generated PyFlink Table API script submitted with `flink run -py`: no
Python runs in the TaskManagers, only the SQL.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flink_jobs.output import Log
from udfs.serde import avsc

INTERACTIONS_SCHEMA = "events/UserInteraction.avsc"
OVER_WINDOWS = (
    ("1m", "1", "MINUTE"),
    ("5m", "5", "MINUTE"),
    ("1h", "1", "HOUR"),
    ("24h", "24", "HOUR"),
)
JOBS = ("copy", "tumble", "over")
COUNT_COLUMNS = (
    "user_id STRING NOT NULL, event_time TIMESTAMP(3) NOT NULL, interactions BIGINT NOT NULL"
)


class JvmJobError(RuntimeError):
    pass


@dataclass(frozen=True)
class SqlJob:
    """One Flink job: DDL, then INSERTs run as one statement set."""

    name: str
    ddl: list[str]
    inserts: list[str]
    config: dict[str, str] = field(default_factory=dict)

    def script(self) -> str:
        """A PyFlink script that submits the job (for `flink run -py`)."""
        spec = json.dumps(
            {"name": self.name, "ddl": self.ddl, "inserts": self.inserts, "config": self.config}
        )
        return _SCRIPT.replace("@SPEC@", repr(spec))


_SCRIPT = """\
import json

from pyflink.table import EnvironmentSettings, TableEnvironment

from flink_jobs.output import Log

spec = json.loads(@SPEC@)
t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
for key, value in spec["config"].items():
    t_env.get_config().set(key, value)
t_env.get_config().set("pipeline.name", spec["name"])
for ddl in spec["ddl"]:
    t_env.execute_sql(ddl)
statements = t_env.create_statement_set()
for insert in spec["inserts"]:
    statements.add_insert_sql(insert)
statements.execute()
"""


def _strip_docs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_docs(v) for k, v in schema.items() if k != "doc"}
    if isinstance(schema, list):
        return [_strip_docs(v) for v in schema]
    return schema


def sql_type(avro: Any) -> str:
    """The Flink SQL type the avro-confluent format maps an Avro type to (the DDL must match
    the reader schema exactly: the format refuses any other)."""
    if isinstance(avro, list):
        others = [t for t in avro if t != "null"]
        if len(others) != 1:
            raise JvmJobError(f"unsupported union {avro}")
        inner = sql_type(others[0]).removesuffix(" NOT NULL")
        return inner if "null" in avro else inner + " NOT NULL"
    if isinstance(avro, dict):
        if avro.get("logicalType") == "timestamp-millis":
            return "TIMESTAMP(3) NOT NULL"
        if avro["type"] == "enum":
            return "STRING NOT NULL"
        return sql_type(avro["type"])
    simple = {
        "string": "STRING",
        "int": "INT",
        "long": "BIGINT",
        "boolean": "BOOLEAN",
        "double": "DOUBLE",
        "float": "FLOAT",
    }
    if avro not in simple:
        raise JvmJobError(f"unsupported Avro type {avro}")
    return simple[avro] + " NOT NULL"


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Endpoints:
    bootstrap_servers: str
    registry_url: str


def _kafka(ep: Endpoints, topic: str) -> list[str]:
    return [
        "'connector' = 'kafka'",
        f"'topic' = {quote(topic)}",
        f"'properties.bootstrap.servers' = {quote(ep.bootstrap_servers)}",
    ]


def source_ddl(ep: Endpoints, topic: str, group: str, out_of_orderness_ms: int) -> str:
    """The interactions topic as table `src`, decoded in the JVM with the current
    UserInteraction schema as reader schema, event-time watermarks like tipoff's bound."""
    schema = _strip_docs(avsc.load(INTERACTIONS_SCHEMA))
    cols = [f"`{f['name']}` {sql_type(f['type'])}" for f in schema["fields"]]
    cols.append(
        f"WATERMARK FOR event_time AS event_time - INTERVAL '{out_of_orderness_ms / 1000:.3f}' "
        "SECOND"
    )
    options = [
        *_kafka(ep, topic),
        f"'properties.group.id' = {quote(group)}",
        "'properties.isolation.level' = 'read_committed'",
        "'scan.startup.mode' = 'earliest-offset'",
        "'scan.bounded.mode' = 'latest-offset'",
        "'value.format' = 'avro-confluent'",
        f"'value.avro-confluent.url' = {quote(ep.registry_url)}",
        f"'value.avro-confluent.schema' = {quote(json.dumps(schema, separators=(',', ':')))}",
    ]
    return f"CREATE TABLE src ({', '.join(cols)}) WITH ({', '.join(options)})"


def sink_ddl(
    ep: Endpoints, name: str, topic: str, columns: str, txn_prefix: str, timeout_ms: int
) -> str:
    """An Avro sink keyed by user_id (raw UTF-8 key, like tipoff's), exactly-once."""
    options = [
        *_kafka(ep, topic),
        "'key.format' = 'raw'",
        "'key.fields' = 'user_id'",
        "'value.format' = 'avro-confluent'",
        f"'value.avro-confluent.url' = {quote(ep.registry_url)}",
        "'sink.delivery-guarantee' = 'exactly-once'",
        f"'sink.transactional-id-prefix' = {quote(txn_prefix)}",
        f"'properties.transaction.timeout.ms' = '{timeout_ms}'",
    ]
    return f"CREATE TABLE {name} ({columns}) WITH ({', '.join(options)})"


def build(
    kind: str,
    ep: Endpoints,
    input_topic: str,
    output_prefix: str,
    *,
    run_id: str,
    parallelism: int,
    checkpoint_interval_ms: int,
    jars: tuple[str, ...] = (),
    out_of_orderness_ms: int = 2_000,
    transaction_timeout_ms: int = 900_000,
) -> SqlJob:
    """The SqlJob of `kind` (copy, tumble, over)."""
    src = source_ddl(ep, input_topic, f"tipoff-bench-{kind}", out_of_orderness_ms)
    config = {
        "parallelism.default": str(parallelism),
        "execution.checkpointing.interval": f"{checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "table.exec.source.idle-timeout": "30 s",
        # A failed JVM job ends its phase at once (the cluster default would restart it,
        # and wait for slots a crashed TaskManager no longer offers).
        "restart-strategy.type": "none",
    }
    if kind == "over":
        # OVER windows keep every row of the last 24 h per user: 2,000,000 rows do not fit
        # a 1.5 GB TaskManager's heap (it died of OutOfMemoryError on the hashmap backend).
        config["state.backend.type"] = "rocksdb"
        config["execution.checkpointing.incremental"] = "true"
    if jars:  # the Kafka connector and the format: the client plans with them too
        config["pipeline.jars"] = ";".join(Path(j).resolve().as_uri() for j in jars)

    def sink(name: str, columns: str) -> str:
        return sink_ddl(
            ep,
            name,
            output_topic(kind, output_prefix),
            columns,
            f"tipoff-bench-{run_id}-{name}",
            transaction_timeout_ms,
        )

    if kind == "copy":
        schema = avsc.load(INTERACTIONS_SCHEMA)
        cols = ", ".join(f"`{f['name']}` {sql_type(f['type'])}" for f in schema["fields"])
        names = ", ".join(f"`{f['name']}`" for f in schema["fields"])
        return SqlJob(
            "tipoff bench: jvm copy (I/O ceiling)",
            [src, sink("copy_sink", cols)],
            [f"INSERT INTO copy_sink SELECT {names} FROM src"],
            config,
        )
    if kind == "tumble":
        return SqlJob(
            "tipoff bench: jvm tumble 1s per user (reference)",
            [
                src,
                sink("tumble_sink", COUNT_COLUMNS.replace("event_time", "window_end")),
            ],
            [
                "INSERT INTO tumble_sink SELECT user_id, window_end, COUNT(*) FROM TABLE("
                "TUMBLE(TABLE src, DESCRIPTOR(event_time), INTERVAL '1' SECOND)) "
                "GROUP BY user_id, window_start, window_end"
            ],
            config,
        )
    if kind == "over":
        ddl, inserts = [src], []
        for label, n, unit in OVER_WINDOWS:
            table = f"over_{label}_sink"
            ddl.append(sink(table, COUNT_COLUMNS))
            inserts.append(
                f"INSERT INTO {table} SELECT user_id, CAST(event_time AS TIMESTAMP(3)), "
                "COUNT(*) OVER ("
                f"PARTITION BY user_id ORDER BY event_time RANGE BETWEEN INTERVAL '{n}' {unit} "
                "PRECEDING AND CURRENT ROW) FROM src"
            )
        return SqlJob(
            "tipoff bench: jvm over 1m/5m/1h/24h per user (context)", ddl, inserts, config
        )
    raise JvmJobError(f"unknown JVM job {kind!r} (one of {', '.join(JOBS)})")


def output_topic(kind: str, output_prefix: str) -> str:
    return f"{output_prefix}jvm.{kind}"


def create_output_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    """The sinks' topics (the broker does not create topics on first use)."""
    from confluent_kafka.admin import NewTopic

    from flink_jobs.stack.health import admin

    client = admin(bootstrap)
    existing = client.list_topics(timeout=10).topics
    new = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics]
    new = [n for n in new if n.topic not in existing]
    if new:
        for fut in client.create_topics(new, operation_timeout=30).values():
            fut.result()


def flink_cli() -> Path:
    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise JvmJobError("apache-flink is not installed in this Python environment")
    return Path(spec.origin).parent / "bin" / "flink"


def submit(job: SqlJob, jobmanager: str, log: Log, timeout_s: float = 300) -> str:
    """`flink run --detached -py <generated script>`; the job id."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench_sql_job.py"
        script.write_text(job.script())
        cmd = [
            str(flink_cli()),
            "run",
            "--detached",
            "-m",
            jobmanager,
            "-py",
            str(script),
            "-pyclientexec",
            sys.executable,
        ]
        log(f"submit: {job.name} to {jobmanager}")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    out = proc.stdout + proc.stderr
    found = re.search(r"JobID ([0-9a-f]{32})", out) or re.search(r"\b([0-9a-f]{32})\b", out)
    if proc.returncode != 0 or not found:
        raise JvmJobError(
            f"`flink run -py` failed (exit {proc.returncode}):\n{out.strip()[-3000:]}"
        )
    return found.group(1)
