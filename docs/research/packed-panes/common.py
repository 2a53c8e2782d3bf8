"""Shared helpers for the r1 experiments (MiniCluster, thread mode, parallelism 1)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

BOOTSTRAP = os.environ.get("R1_BOOTSTRAP", "127.0.0.1:9092")
JARS = [
    Path.home() / ".cache/tipoff/flink-jars/flink-sql-connector-kafka-5.0.0-2.2.jar",
]


def python_first_on_path() -> None:
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def env(parallelism: int = 1, extra: dict | None = None):
    python_first_on_path()
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

    conf = Configuration()
    conf.set_string("python.execution-mode", "thread")
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("pipeline.jars", ";".join(j.resolve().as_uri() for j in JARS))
    conf.set_string("restart-strategy.type", "none")
    for k, v in (extra or {}).items():
        conf.set_string(k, v)
    e = StreamExecutionEnvironment.get_execution_environment(conf)
    e.set_parallelism(parallelism)
    t = StreamTableEnvironment.create(e)
    return e, t


def recreate_topic(name: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    if name in a.list_topics(timeout=10).topics:
        for f in a.delete_topics([name]).values():
            f.result()
        for _ in range(50):
            if name not in a.list_topics(timeout=10).topics:
                break
            time.sleep(0.2)
        time.sleep(1)
    for f in a.create_topics([NewTopic(name, partitions, 1, config={"retention.ms": "-1"})]).values():
        f.result()
    time.sleep(1)


def producer():
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, "acks": "all",
                     "queue.buffering.max.messages": 1000000})


def kafka_src_ddl(name: str, topic: str, *, rowtime: str = "ts", wm_delay: str = "'2' SECOND",
                  bounded: bool = False, extra_opts: list[str] | None = None,
                  group: str = "r1") -> str:
    """Kafka table like tipoff's (raw key/value + metadata) with an event-time column.
    rowtime='ts': watermark on the Kafka timestamp; rowtime='rt': rt = ts - 1 ms."""
    opts = [
        "'connector' = 'kafka'", f"'topic' = '{topic}'",
        f"'properties.bootstrap.servers' = '{BOOTSTRAP}'",
        f"'properties.group.id' = '{group}'",
        "'key.format' = 'raw'", "'key.fields' = 'k'",
        "'value.format' = 'raw'", "'value.fields-include' = 'EXCEPT_KEY'",
        "'scan.startup.mode' = 'earliest-offset'",
    ]
    if bounded:
        opts.append("'scan.bounded.mode' = 'latest-offset'")
    opts += extra_opts or []
    cols = ["k BYTES", "v BYTES", "`partition` INT METADATA VIRTUAL",
            "`offset` BIGINT METADATA VIRTUAL",
            "ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL"]
    if rowtime == "rt":
        cols.append("rt AS ts - INTERVAL '0.001' SECOND")
    cols.append(f"WATERMARK FOR {rowtime} AS {rowtime} - INTERVAL {wm_delay}")
    return f"CREATE TEMPORARY TABLE {name} ({', '.join(cols)}) WITH ({', '.join(opts)})"


def jvm_pid() -> int | None:
    me = os.getpid()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and "java" in stat.split("(", 1)[1].split(")")[0]:
            return int(p)
    return None


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system
