"""How cheaply can records enter Python? Per record vs panes packed into one string.

usage: packed.py MODE TOPIC [BUCKETS]
MODE: unkeyed | keyed | arrays | packed | packed_v
Every mode touches each record's value bytes (len) and its coordinates in Python.
"""

import json
import os
import sys
import time

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jvm-batching"))
import common  # noqa: E402  (set R1_BOOTSTRAP=127.0.0.1:9092 for tipoff's default stack)

mode, topic = sys.argv[1], sys.argv[2]
BUCKETS = int(sys.argv[3]) if len(sys.argv) > 3 else 64
e, t = common.env()
from pyflink.common import Types  # noqa: E402
from pyflink.datastream import DataStream, KeyedProcessFunction, ProcessFunction  # noqa: E402
from pyflink.java_gateway import get_gateway  # noqa: E402

t.execute_sql(
    common.kafka_src_ddl("src", topic, rowtime="rt", bounded=True, group=f"p-{time.time()}")
)
TS_MS = "(EXTRACT(EPOCH FROM ts) * 1000 + MOD(EXTRACT(MILLISECOND FROM ts), 1000))"
t.execute_sql(
    "CREATE TEMPORARY VIEW src_b AS SELECT *, "
    f"COALESCE(ABS(MOD(HASH_CODE(CAST(k AS STRING)), {BUCKETS})), 0) AS bucket, "
    f"{TS_MS} AS ts_ms FROM src"
)
# One string per pane: per record "p,o,ts,klen,vlen;" + key chars + value chars, every
# byte as one ISO-8859-1 char.
REC = (
    "CONCAT(CAST(`partition` AS STRING), ',', CAST(`offset` AS STRING), ',', "
    "CAST(ts_ms AS STRING), ',', "
    "CAST(COALESCE(CHAR_LENGTH(DECODE(k, 'ISO-8859-1')), -1) AS STRING), ',', "
    "CAST(COALESCE(CHAR_LENGTH(DECODE(v, 'ISO-8859-1')), -1) AS STRING), ';', "
    "COALESCE(DECODE(k, 'ISO-8859-1'), ''), COALESCE(DECODE(v, 'ISO-8859-1'), ''))"
)
META = (
    "CONCAT(CAST(`partition` AS STRING), ',', CAST(`offset` AS STRING), ',', "
    "CAST(ts_ms AS STRING), ',', COALESCE(DECODE(k, 'ISO-8859-1'), ''))"
)
SQL = {
    "arrays": "SELECT bucket, ARRAY_AGG(k), ARRAY_AGG(v), ARRAY_AGG(`partition`), "
    "ARRAY_AGG(`offset`), ARRAY_AGG(ts_ms) FROM TABLE(TUMBLE(TABLE src_b, DESCRIPTOR(rt), "
    "INTERVAL '1' SECOND)) GROUP BY bucket, window_start, window_end",
    "packed": f"SELECT bucket, LISTAGG({REC}, '') FROM TABLE(TUMBLE(TABLE src_b, "
    "DESCRIPTOR(rt), INTERVAL '1' SECOND)) GROUP BY bucket, window_start, window_end",
    "packed_v": f"SELECT bucket, LISTAGG({META}, ';'), ARRAY_AGG(v) FROM TABLE(TUMBLE(TABLE "
    "src_b, DESCRIPTOR(rt), INTERVAL '1' SECOND)) GROUP BY bucket, window_start, window_end",
}


def unpack(s: str):
    b = s.encode("latin-1")
    i, n = 0, len(b)
    while i < n:
        j = b.index(b";", i)
        p, o, ts, kl, vl = b[i:j].split(b",")
        kl, vl = int(kl), int(vl)
        i = j + 1
        k = b[i : i + kl] if kl >= 0 else None
        i += max(kl, 0)
        v = b[i : i + vl] if vl >= 0 else None
        i += max(vl, 0)
        yield k, v, int(p), int(o), int(ts)


class Stats:
    def open(self, ctx):
        self.calls = self.n = self.bytes = 0
        self.coords = set()

    def touch(self, k, v, p, o, ts):
        self.n += 1
        self.coords.add((p, o))
        if v is not None:
            self.bytes += len(v)

    def close(self):
        out = {"calls": self.calls, "records": self.n, "bytes": self.bytes,
               "distinct": len(self.coords)}
        with open(f"/work/research-s6/out_{mode}_{topic}.py.json", "w") as f:
            json.dump(out, f)


class PerRecordU(Stats, ProcessFunction):
    def process_element(self, row, ctx):
        self.calls += 1
        self.touch(row[0], row[1], row[2], row[3], row[4])
        return []


class PerRecordK(Stats, KeyedProcessFunction):
    def process_element(self, row, ctx):
        self.calls += 1
        self.touch(row[0], row[1], row[2], row[3], row[4])
        return []


class Panes(Stats, KeyedProcessFunction):
    def process_element(self, row, ctx):
        self.calls += 1
        if mode == "arrays":
            recs = zip(row[1], row[2], row[3], row[4], row[5])
        elif mode == "packed":
            recs = unpack(row[1])
        else:
            metas = row[1].encode("latin-1").split(b";")
            recs = []
            for m, v in zip(metas, row[2]):
                p, o, ts, k = m.split(b",", 3)
                recs.append((k, v, int(p), int(o), int(ts)))
        for r in recs:
            self.touch(*r)
        return []


jvm = get_gateway().jvm


def discard(ds):
    return DataStream(
        ds._j_data_stream.sinkTo(
            jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink()
        )
    )


if mode == "unkeyed":
    ds = t.to_data_stream(t.sql_query("SELECT k, v, `partition`, `offset`, ts_ms FROM src_b"))
    discard(ds.process(PerRecordU(), output_type=Types.INT()))
elif mode == "keyed":
    ds = t.to_data_stream(t.sql_query("SELECT k, v, `partition`, `offset`, ts_ms FROM src_b"))
    discard(
        ds.key_by(lambda r: r[0], key_type=Types.PRIMITIVE_ARRAY(Types.BYTE())).process(
            PerRecordK(), output_type=Types.INT()
        )
    )
else:
    ds = t.to_data_stream(t.sql_query(SQL[mode]))
    discard(ds.key_by(lambda r: r[0], key_type=Types.INT()).process(Panes(), output_type=Types.INT()))

pid = common.jvm_pid()
c0, w0 = common.cpu_seconds(pid), time.time()
e.execute(f"packed {mode}")
w1, c1 = time.time(), common.cpu_seconds(pid)
res = {"mode": mode, "topic": topic, "buckets": BUCKETS, "wall_s": round(w1 - w0, 2),
       "jvm_cpu_s": round(c1 - c0, 2)}
path = f"/work/research-s6/out_{mode}_{topic}.py.json"
if os.path.exists(path):
    res["python"] = json.load(open(path))
print("RESULT", json.dumps(res))
os._exit(0)
