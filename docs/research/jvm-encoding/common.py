"""Shared pieces of the r2 experiments: Flink env, record generator, DDL, verification.

Experiment only: nothing here is imported by /work/main.
"""

from __future__ import annotations

import json
import re
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, "/work/main")

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
REGISTRY = os.environ.get("SCHEMA_REGISTRY_URL", "http://127.0.0.1:28085/apis/ccompat/v7")
JARS = sorted(str(p) for p in (Path.home() / ".cache/tipoff/flink-jars").glob("*.jar"))
SCHEMA_PATH = Path("/work/main/avro_schemas/features/UserFeatures.avsc")
SCHEMA_TEXT = SCHEMA_PATH.read_text()
SCHEMA = json.loads(SCHEMA_TEXT)
FIELDS = [f["name"] for f in SCHEMA["fields"]]
BASE_MS = 1_790_000_000_000  # 2026-09-21
TS_FIELDS = ("last_active_at", "feature_time", "computed_at")


# ---------------------------------------------------------------- records
TEAMS = ["t-bos", "t-lal", "t-nyk", "t-gsw", "t-mia", "t-chi", "t-é漢", "t-x" * 20]


def record(i: int) -> dict[str, Any] | None:
    """Deterministic, varied UserFeatures value for sequence number i; None = tombstone
    (every 7th record). Keys repeat (i % 97) so per-key order can be checked."""
    if i % 7 == 3:
        return None
    u = f"user-{i % 97}"
    n_follow = i % 4
    return {
        "user_id": u,
        "interactions_1m": i % 13,
        "interactions_5m": (i * 7) % 101,
        "interactions_1h": -(i % 3) if i % 11 == 0 else (i * 31) % 2_000_000,
        "interactions_24h": 2_147_483_647 if i % 17 == 0 else i,
        "video_starts_1h": i % 5,
        "distinct_games_1h": i % 9,
        "followed_teams": sorted(TEAMS[(i + k) % len(TEAMS)] for k in range(n_follow)),
        "top_teams": [TEAMS[(i * 3 + k) % len(TEAMS)] for k in range((i // 2) % 4)],
        "session_id": f"{u}:{BASE_MS + i * 997}",
        "session_events": (i * 5) % 300,
        "session_duration_s": 9_007_199_254_740_993 if i % 19 == 0 else (i * 13) % 86_400,
        "watching_game_id": None if i % 3 == 0 else ("" if i % 10 == 1 else f"g-{i % 24}"),
        "last_active_at": BASE_MS + i * 1000 - (i % 5) * 10,
        "feature_time": feature_time(i),
        "computed_at": BASE_MS + i * 1000 + 123,
        "alerts_opened_1h": i % 4,
    }


def feature_time(i: int) -> int:
    return BASE_MS + i * 1000


def key_of(i: int) -> str:
    return f"user-{i % 97}"


# ---------------------------------------------------------------- Flink
def env(parallelism: int = 1, checkpoint_ms: int = 2000):
    bin_dir = "/work/main/.venv/bin"
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    from pyflink.common import Configuration
    from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

    conf = Configuration()
    conf.set_string("python.execution-mode", "thread")
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("pipeline.jars", ";".join(Path(j).resolve().as_uri() for j in JARS))
    conf.set_string("restart-strategy.type", "none")
    e = StreamExecutionEnvironment.get_execution_environment(conf)
    e.set_parallelism(parallelism)
    e.enable_checkpointing(checkpoint_ms, CheckpointingMode.EXACTLY_ONCE)
    t = StreamTableEnvironment.create(e)
    t.get_config().set("table.local-time-zone", "UTC")
    return e, t


def q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_type(avro: Any) -> str:
    """Flink SQL type that AvroSchemaConverter.convertToDataType gives for an Avro type (the
    avro-confluent format in 2.2.0 refuses a table whose types differ from it)."""
    if isinstance(avro, list):
        others = [t for t in avro if t != "null"]
        assert len(others) == 1, avro
        inner = sql_type(others[0]).removesuffix(" NOT NULL")
        return inner if "null" in avro else inner + " NOT NULL"
    if isinstance(avro, dict):
        if avro.get("logicalType") == "timestamp-millis":
            return "TIMESTAMP(3) NOT NULL"
        if avro["type"] == "enum":
            return "STRING NOT NULL"
        if avro["type"] == "array":
            return f"ARRAY<{sql_type(avro['items'])}> NOT NULL"
        return sql_type(avro["type"])
    simple = {"string": "STRING", "int": "INT", "long": "BIGINT", "boolean": "BOOLEAN",
              "double": "DOUBLE", "float": "FLOAT"}
    return simple[avro] + " NOT NULL"


def columns_ddl(schema: dict[str, Any] = SCHEMA) -> str:
    return ", ".join(f"`{f['name']}` {sql_type(f['type'])}" for f in schema["fields"])


def kafka_common(topic: str, prefix: str, timeout_ms: int = 900_000) -> list[str]:
    return [
        f"'topic' = {q(topic)}",
        f"'properties.bootstrap.servers' = {q(BOOTSTRAP)}",
        "'sink.delivery-guarantee' = 'exactly-once'",
        f"'sink.transactional-id-prefix' = {q(prefix)}",
        f"'properties.transaction.timeout.ms' = '{timeout_ms}'",
    ]


def upsert_avro_sink_ddl(name: str, topic: str, prefix: str, schema_text: str = SCHEMA_TEXT) -> str:
    """JVM-encoded UserFeatures: upsert-kafka, raw UTF-8 key, avro-confluent value with the
    contract as writer schema, feature_time header, exactly-once."""
    options = [
        "'connector' = 'upsert-kafka'",
        *kafka_common(topic, prefix),
        "'key.format' = 'raw'",
        "'value.format' = 'avro-confluent'",
        f"'value.avro-confluent.url' = {q(REGISTRY)}",
        # the writer schema: the contract file's own text (docs and all)
        f"'value.avro-confluent.schema' = {q(schema_text)}",
        "'value.fields-include' = 'ALL'",
    ]
    return (
        f"CREATE TEMPORARY TABLE {name} ({columns_ddl()}, "
        "headers MAP<STRING, BYTES> METADATA, PRIMARY KEY (user_id) NOT ENFORCED) "
        f"WITH ({', '.join(options)})"
    )


def raw_sink_ddl(name: str, topic: str, prefix: str) -> str:
    """Today's sink (flink_jobs/pipeline.py sink_table): raw key/value bytes + headers."""
    options = [
        "'connector' = 'kafka'",
        *kafka_common(topic, prefix),
        "'key.format' = 'raw'",
        "'key.fields' = 'k'",
        "'value.format' = 'raw'",
        "'value.fields-include' = 'EXCEPT_KEY'",
    ]
    return (
        f"CREATE TEMPORARY TABLE {name} (k BYTES, v BYTES, headers MAP<STRING, BYTES> METADATA) "
        f"WITH ({', '.join(options)})"
    )


def typed_row_type():
    """Types.ROW_NAMED with the record's fields; timestamps as epoch-ms LONG (converted in
    SQL), arrays as BASIC_ARRAY(STRING)."""
    from pyflink.common import Types

    m = {"string": Types.STRING(), "int": Types.INT(), "long": Types.LONG(),
         "double": Types.DOUBLE()}
    out = []
    for f in SCHEMA["fields"]:
        t = f["type"]
        if isinstance(t, list):
            out.append(m[[x for x in t if x != "null"][0]])
        elif isinstance(t, dict) and t["type"] == "array":
            out.append(Types.BASIC_ARRAY(Types.STRING()))
        elif isinstance(t, dict):
            out.append(m[t["type"]])
        else:
            out.append(m[t])
    return Types.ROW_NAMED(FIELDS, out)


def select_for_avro_sink(view: str) -> str:
    """Typed rows -> sink columns: epoch ms -> TIMESTAMP(3) (UTC session zone), arrays
    to ARRAY<STRING NOT NULL>, the feature_time header."""
    cols = []
    for f in FIELDS:
        if f in TS_FIELDS:
            cols.append(f"CAST(TO_TIMESTAMP_LTZ(`{f}`, 3) AS TIMESTAMP(3))")
        elif f in ("followed_teams", "top_teams"):
            cols.append(f"CAST(`{f}` AS ARRAY<STRING NOT NULL>)")
        else:
            cols.append(f"`{f}`")
    cols.append("MAP['feature_time', CAST(CAST(feature_time AS STRING) AS BYTES)]")
    return f"SELECT {', '.join(cols)} FROM {view}"


def to_typed_row(i: int, row_kind_delete=None):
    """The typed Row for record(i); a tombstone is a DELETE row (key, feature_time; the NOT
    NULL columns get placeholders, never written: upsert-kafka writes a null value)."""
    from pyflink.common import Row, RowKind

    r = record(i)
    if r is None:
        r = {"user_id": key_of(i), "interactions_1m": 0, "interactions_5m": 0,
             "interactions_1h": 0, "interactions_24h": 0, "video_starts_1h": 0,
             "distinct_games_1h": 0, "followed_teams": [], "top_teams": [], "session_id": "",
             "session_events": 0, "session_duration_s": 0, "watching_game_id": None,
             "last_active_at": 0, "feature_time": feature_time(i), "computed_at": 0,
             "alerts_opened_1h": 0}
        row = Row(*[r[f] for f in FIELDS])
        row.set_row_kind(RowKind.DELETE)
        return row
    return Row(*[r[f] for f in FIELDS])


# ---------------------------------------------------------------- registry / kafka
def http(path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        REGISTRY + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def subject_versions(subject: str) -> list[tuple[int, int]]:
    """[(version, id)] under subject."""
    out = []
    for v in http(f"/subjects/{subject}/versions"):
        out.append((v, http(f"/subjects/{subject}/versions/{v}")["id"]))
    return out


def create_topic(topic: str, partitions: int = 4, compacted: bool = True) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    cfg = {"cleanup.policy": "compact"} if compacted else {}
    fs = admin.create_topics([NewTopic(topic, partitions, 1, config=cfg)])
    for f in fs.values():
        try:
            f.result()
        except Exception as e:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise


def register(subject: str, schema_text: str) -> int:
    return int(http(f"/subjects/{subject}/versions", {"schema": schema_text})["id"])


def consume_all(topic: str, isolation: str = "read_committed", timeout_s: float = 20):
    """Every record of topic (all partitions) as dicts, in offset order per partition."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"r2-{time.time()}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    ends = {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    done = {p for p in parts if ends[p] == 0}
    deadline = time.time() + timeout_s
    while len(done) < len(parts) and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            # read_committed stops at the LSO; transaction markers take offsets
            pos = c.position([TopicPartition(topic, p) for p in parts])
            for tp in pos:
                if tp.offset >= ends[tp.partition] - 1:
                    done.add(tp.partition)
            continue
        if m.error():
            continue
        out.append({"partition": m.partition(), "offset": m.offset(), "key": m.key(),
                    "value": m.value(), "headers": dict(m.headers() or [])})
    c.close()
    return out


def proc_cpu(pid: int) -> float:
    """utime+stime seconds of pid (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                st = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(st[1]) == pid:
                out.append(int(p.name))
    return out


def gateway_jvm_pid() -> int:
    from pyflink.java_gateway import get_gateway

    get_gateway()
    kids = [k for k in children_of(os.getpid())
            if "java" in Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace")]
    assert len(kids) == 1, kids
    return kids[0]


def kafka_pid() -> int | None:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "kafka.Kafka" in cmd and "/work/research/r2/state" in cmd:
                return int(p.name)
    return None


def sequence(env, n: int):
    """0..n-1 as a LONG stream (JVM NumberSequenceSource, bounded)."""
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    return env.from_source(NumberSequenceSource(0, n - 1), WatermarkStrategy.no_watermarks(),
                           "seq", Types.LONG())


class ThreadSampler:
    """CPU seconds per JVM thread (by name) used while running: samples /proc/PID/task every
    0.3 s (threads of a finished job disappear, so the last sample of each is kept)."""

    def __init__(self, pid: int):
        import threading

        self.pid = pid
        self.base = self._read()
        self.last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> dict[int, tuple[str, float]]:
        out = {}
        tck = os.sysconf("SC_CLK_TCK")
        for p in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                raw = (p / "stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1: raw.rindex(")")]
            f = raw.rsplit(")", 1)[1].split()
            out[int(p.name)] = (name, (int(f[11]) + int(f[12])) / tck)
        return out

    def _run(self):
        while not self._stop.is_set():
            self.last.update(self._read())
            self._stop.wait(0.3)

    def start(self):
        self._t.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._t.join()
        self.last.update(self._read())
        agg: dict[str, float] = {}
        for tid, (name, cpu) in self.last.items():
            used = cpu - self.base.get(tid, (name, 0.0))[1]
            if used >= 0.05:
                key = re.sub(r"[\d#]+", "N", name)
                agg[key] = round(agg.get(key, 0.0) + used, 2)
        return dict(sorted(agg.items(), key=lambda kv: -kv[1]))
