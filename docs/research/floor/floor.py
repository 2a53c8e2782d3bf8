"""What does PyFlink thread mode cost per input event before any feature logic or state?

usage: floor.py MODE TOPIC [OUTS] [GUARANTEE]
MODE: jvm      SQL only: each record written OUTS times (CROSS JOIN UNNEST), no Python
      py       one unkeyed Python call per record, yielding OUTS rows to the sink
      keyed    a Python call per record (the decode step's place), keyed in the JVM, a keyed
               Python call per record (the arrival's place) yielding OUTS rows
OUTS: output records per input record (3: about what tipoff writes per input event)
The sinks are tipoff's: raw key/value, a feature_time header, pipeline.insert_into's SQL.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jvm-batching"))
import common  # noqa: E402

mode, topic = sys.argv[1], sys.argv[2]
OUTS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
GUARANTEE = sys.argv[4] if len(sys.argv) > 4 else "at-least-once"
OUT_TOPIC = f"floor.out.{mode}"
common.recreate_topic(OUT_TOPIC, 4)
extra = {"execution.checkpointing.interval": "10 s", "execution.checkpointing.dir": "file:///tmp/floor-ckpt", "execution.checkpointing.tolerable-failed-checkpoints": "3"}
e, t = common.env(extra=extra)
from pyflink.common import Row, Types  # noqa: E402
from pyflink.datastream import DataStream, KeyedProcessFunction, KeyedStream, ProcessFunction  # noqa: E402
from pyflink.java_gateway import get_gateway  # noqa: E402

BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())
KAFKA_ROW = Types.ROW_NAMED(["k", "v", "ts"], [BYTES, BYTES, Types.LONG()])
KEYED_INNER = Types.ROW([Types.STRING(), Types.LONG(), BYTES])
KEYED = Types.ROW([Types.STRING(), KEYED_INNER])

t.execute_sql(common.kafka_src_ddl("src", topic, bounded=True, group=f"f-{time.time()}"))
opts = [
    "'connector' = 'kafka'", f"'topic' = '{OUT_TOPIC}'",
    f"'properties.bootstrap.servers' = '{common.BOOTSTRAP}'",
    "'key.format' = 'raw'", "'key.fields' = 'k'", "'value.format' = 'raw'",
    "'value.fields-include' = 'EXCEPT_KEY'", f"'sink.delivery-guarantee' = '{GUARANTEE}'",
]
if GUARANTEE == "exactly-once":
    opts.append(f"'sink.transactional-id-prefix' = 'floor-{mode}-{int(time.time())}'")
t.execute_sql(
    "CREATE TEMPORARY TABLE sink (k BYTES, v BYTES, headers MAP<STRING, BYTES> METADATA) "
    f"WITH ({', '.join(opts)})"
)
HEADERS = "MAP['feature_time', CAST(CAST(ts AS STRING) AS BYTES)]"
TS_MS = "(EXTRACT(EPOCH FROM ts) * 1000 + MOD(EXTRACT(MILLISECOND FROM ts), 1000))"


def outputs(k: bytes, v: bytes, ts: int):
    # the input value as is (~90 bytes; a UserFeatures record is ~100-200)
    value = v
    return [Row(k, value, ts + 1000 * i) for i in range(OUTS)]


class Counted:
    n = 0

    def close(self):
        with open(f"/tmp/floor-{mode}-{type(self).__name__}-{id(self)}.count", "w") as f:
            f.write(str(self.n))


class PerRecord(Counted, ProcessFunction):
    def process_element(self, row, ctx):
        self.n += 1
        yield from outputs(row[0], row[1], row[2])


class DecodeLike(Counted, ProcessFunction):
    def process_element(self, row, ctx):
        self.n += 1
        key = row[0].decode()
        yield Row(key, Row(key, row[2], row[1]))


class ArrivalLike(Counted, KeyedProcessFunction):
    def process_element(self, row, ctx):
        self.n += 1
        # the keyed function receives the inner row (key, time, value), as tipoff's does
        yield from outputs(row[0].encode(), row[2], row[1])


def insert(ds: DataStream) -> str:
    t.create_temporary_view("outrows", t.from_data_stream(ds))
    return f"INSERT INTO sink SELECT k, v, {HEADERS} FROM outrows"


if mode == "jvm":
    nums = ", ".join(str(i) for i in range(OUTS))
    stmt = (
        f"INSERT INTO sink SELECT k, v, "
        f"MAP['feature_time', CAST(CAST({TS_MS} + 1000 * i AS STRING) AS BYTES)] "
        f"FROM src CROSS JOIN UNNEST(ARRAY[{nums}]) AS x(i)"
    )
    pid = common.jvm_pid()
    c0, w0 = common.cpu_seconds(pid), time.time()
    t.execute_sql(stmt).wait()
else:
    rows = t.to_data_stream(t.sql_query(f"SELECT k, v, CAST({TS_MS} AS BIGINT) FROM src"))
    if mode == "py":
        out = rows.process(PerRecord(), output_type=KAFKA_ROW)
    else:
        decoded = rows.process(DecodeLike(), output_type=KEYED)
        jvm = get_gateway().jvm
        j_keyed = decoded._j_data_stream.keyBy(
            jvm.KeyByKeySelector(), Types.ROW([Types.STRING()]).get_java_type_info()
        )
        out = KeyedStream(j_keyed, KEYED_INNER, decoded).process(
            ArrivalLike(), output_type=KAFKA_ROW
        )
    stmt = insert(out)
    pid = common.jvm_pid()
    c0, w0 = common.cpu_seconds(pid), time.time()
    t.execute_sql(stmt).wait()
w1, c1 = time.time(), common.cpu_seconds(pid)
from confluent_kafka import Consumer, TopicPartition  # noqa: E402

c = Consumer({"bootstrap.servers": common.BOOTSTRAP, "group.id": "floor-count"})
md = c.list_topics(OUT_TOPIC, timeout=10).topics[OUT_TOPIC].partitions
written = sum(c.get_watermark_offsets(TopicPartition(OUT_TOPIC, p), timeout=10)[1] for p in md)
res = {"mode": mode, "topic": topic, "outs": OUTS, "guarantee": GUARANTEE,
       "wall_s": round(w1 - w0, 2), "jvm_cpu_s": round(c1 - c0, 2), "written": written}
print("RESULT", json.dumps(res))
os._exit(0)
