"""Q2: batched (window TVF + ARRAY_AGG per hash bucket -> one Python call per bucket pane)
vs per-record (one Python call per record) on the same pre-produced topic, bounded read.

usage: q2_bench.py MODE TOPIC     MODE: batched | perrecord | perrecord_jvmkey | jvm_arrayagg | jvm_scan
"""
import json, os, sys, time
import common

mode, topic = sys.argv[1], sys.argv[2]
OUT = f"/work/research/r1/q2_{mode}_{topic}_b{os.environ.get('BUCKETS', '64')}.json"
e, t = common.env()
from pyflink.common import Types
from pyflink.datastream import DataStream, KeyedProcessFunction, ProcessFunction
from pyflink.java_gateway import get_gateway

t.execute_sql(common.kafka_src_ddl("src", topic, rowtime="rt", bounded=True, group=f"q2-{time.time()}"))
t.execute_sql("CREATE TEMPORARY VIEW src_b AS SELECT *, "
              "COALESCE(ABS(MOD(HASH_CODE(CAST(k AS STRING)), " + os.environ.get("BUCKETS", "64") + ")), 0) AS bucket FROM src")
TS_MS = "(EXTRACT(EPOCH FROM ts) * 1000 + MOD(EXTRACT(MILLISECOND FROM ts), 1000))"
# Parallel arrays (one ARRAY_AGG per column; they accumulate in the same row order).
BATCH_SQL = f"""
SELECT bucket, window_start, window_end,
       ARRAY_AGG(k) AS ks, ARRAY_AGG(v) AS vs, ARRAY_AGG(`partition`) AS ps,
       ARRAY_AGG(`offset`) AS os, ARRAY_AGG({TS_MS}) AS tss
FROM TABLE(TUMBLE(TABLE src_b, DESCRIPTOR(rt), INTERVAL '1' SECOND))
GROUP BY bucket, window_start, window_end
"""
# ARRAY_AGG of ROWs: correct in the JVM, but corrupted on the way into Python (thread mode).
BATCH_ROWS_SQL = """
SELECT bucket, window_start, window_end,
       ARRAY_AGG(ROW(k, v, `partition`, `offset`, ts)) AS recs
FROM TABLE(TUMBLE(TABLE src_b, DESCRIPTOR(rt), INTERVAL '1' SECOND))
GROUP BY bucket, window_start, window_end
"""


class Batched(KeyedProcessFunction):
    def open(self, ctx):
        self.coords = set(); self.mismatch = 0
        self.calls = 0; self.n = 0; self.nulls = 0; self.bytes = 0; self.info = None; self.null_coords = []

    def process_element(self, row, ctx):
        recs = row[3] if ROWS else zip(row[3], row[4], row[5], row[6], row[7])
        if not ROWS:
            assert len(row[3]) == len(row[4]) == len(row[5]) == len(row[6]) == len(row[7])
        if self.info is None:
            r0 = recs[0] if ROWS else [row[i][0] for i in range(3, 8)]
            self.info = {"row": type(row).__name__, "recs": type(row[3]).__name__,
                         "elem": type(r0).__name__, "elem_fields": [type(f).__name__ for f in r0],
                         "elem_repr": repr(r0)[:300], "window_start": repr(row[1]),
                         "row_repr": repr(row)[:200], "current_key": repr(ctx.get_current_key())}
        self.calls += 1
        for k, v, part, off, ts in recs:
            self.n += 1
            self.coords.add((part, off))
            if v is not None and b'"u":"' + k + b'"' not in v:
                self.mismatch += 1
            if v is None:
                self.nulls += 1
                if len(self.null_coords) < 100:
                    self.null_coords.append((part, off))
            else:
                self.bytes += len(v)
        yield row[0], len(row[3])

    def close(self):
        json.dump({"calls": self.calls, "records": self.n, "nulls": self.nulls,
                   "distinct_coords": len(self.coords), "key_value_mismatch": self.mismatch,
                   "bytes": self.bytes, "types": self.info, "null_coords": sorted(set(self.null_coords))}, open(OUT + ".py", "w"))


class PerRecord(KeyedProcessFunction):
    def open(self, ctx):
        self.calls = 0; self.n = 0; self.nulls = 0; self.bytes = 0; self.info = None; self.null_coords = []

    def process_element(self, row, ctx):
        if self.info is None:
            self.info = {"row": type(row).__name__, "row_repr": repr(row)[:300]}
        self.calls += 1
        k, v, part, off, ts = row
        self.n += 1
        if v is None:
            self.nulls += 1
            if len(self.null_coords) < 100:
                self.null_coords.append((part, off))
        else:
            self.bytes += len(v)
        # yields nothing: one Python call per record, no output

    def close(self):
        json.dump({"calls": self.calls, "records": self.n, "nulls": self.nulls,
                   "bytes": self.bytes, "types": self.info, "null_coords": sorted(self.null_coords)}, open(OUT + ".py", "w"))


jvm = get_gateway().jvm
def discard(ds):
    return DataStream(ds._j_data_stream.sinkTo(
        jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink()))

# PyFlink's key_by(lambda) = Python AddKey process + JVM keyBy + Python keyed process.
# (A JVM-only keyBy straight on to_data_stream's output fails: its type is ExternalTypeInfo and
# PyFlink's keyed operator casts its input type to RowTypeInfo -> ClassCastException.)
ROWS = mode == "batched_rows"
if mode in ("batched", "batched_rows"):
    ds = t.to_data_stream(t.sql_query(BATCH_ROWS_SQL if ROWS else BATCH_SQL))
    out = ds.key_by(lambda r: r[0], key_type=Types.INT()).process(
        Batched(), output_type=Types.TUPLE([Types.INT(), Types.INT()]))
    discard(out)
elif mode == "perrecord":
    ds = t.to_data_stream(t.sql_query("SELECT k, v, `partition`, `offset`, ts FROM src"))
    out = ds.key_by(lambda r: r[0].decode('utf-8', 'replace'), key_type=Types.STRING()).process(
        PerRecord(), output_type=Types.INT())
    discard(out)
elif mode == "perrecord_unkeyed":  # lower bound: one Python call per record, no key_by
    class PR(ProcessFunction):
        open = PerRecord.open; close = PerRecord.close
        process_element = PerRecord.process_element
    ds = t.to_data_stream(t.sql_query("SELECT k, v, `partition`, `offset`, ts FROM src"))
    discard(ds.process(PR(), output_type=Types.INT()))
elif mode == "jvm_arrayagg":
    t.execute_sql("CREATE TEMPORARY TABLE bh (bucket INT, n INT) WITH ('connector'='blackhole')")
    t.create_temporary_view("b", t.sql_query(BATCH_SQL))
    stmt = "INSERT INTO bh SELECT bucket, CARDINALITY(ks) FROM b"
elif mode == "jvm_scan":
    t.execute_sql("CREATE TEMPORARY TABLE bh (k BYTES, v BYTES, p INT, o BIGINT, ts TIMESTAMP_LTZ(3)) WITH ('connector'='blackhole')")
    stmt = "INSERT INTO bh SELECT k, v, `partition`, `offset`, ts FROM src"

pid = common.jvm_pid()
c0, s0, w0 = common.cpu_seconds(pid), common.self_cpu(), time.time()
if mode.startswith("jvm_"):
    t.execute_sql(stmt).wait()
else:
    e.execute(f"q2 {mode}")
w1, c1, s1 = time.time(), common.cpu_seconds(pid), common.self_cpu()
res = {"mode": mode, "topic": topic, "wall_s": round(w1 - w0, 2), "jvm_cpu_s": round(c1 - c0, 2),
       "client_py_cpu_s": round(s1 - s0, 2)}
if os.path.exists(OUT + ".py"):
    res["python"] = json.load(open(OUT + ".py"))
print("RESULT", json.dumps(res))
json.dump(res, open(OUT, "w"), indent=1)
os._exit(0)
